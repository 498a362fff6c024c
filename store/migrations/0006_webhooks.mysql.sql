-- 0006_webhooks (MySQL 8 / MariaDB 10.11). Keep in step with 0006_webhooks.sqlite.sql.
-- Merchants' webhook endpoints (secrets sealed like account numbers: the current one, and
-- during a rotation's overlap the previous one with when it stops signing), the events they
-- were sent (the exact body, so every try and redelivery sends the same bytes), one delivery
-- per endpoint and event, and the log of every attempt. Endpoints are never removed (status
-- 'deleted', secrets erased) so that their delivery log stays readable.
-- Re-runnable: CREATE … IF NOT EXISTS.

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                     VARCHAR(64)    NOT NULL,
    merchant_id            VARCHAR(64)    NOT NULL,
    url                    VARCHAR(2048)  NOT NULL,
    event_types            TEXT           NOT NULL,
    description            VARCHAR(255)   NOT NULL DEFAULT '',
    status                 VARCHAR(16)    NOT NULL,
    secret_ciphertext      VARBINARY(512) NOT NULL,
    secret_key_id          VARCHAR(64)    NOT NULL,
    prev_secret_ciphertext VARBINARY(512) NULL,
    prev_secret_key_id     VARCHAR(64)    NOT NULL DEFAULT '',
    prev_secret_expires_at DATETIME(6)    NULL,
    failing_since          DATETIME(6)    NULL,
    created_at             DATETIME(6)    NOT NULL,
    updated_at             DATETIME(6)    NOT NULL,
    PRIMARY KEY (id),
    KEY webhook_endpoints_merchant_idx (merchant_id, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_events (
    id          VARCHAR(64) NOT NULL,
    type        VARCHAR(64) NOT NULL,
    merchant_id VARCHAR(64) NOT NULL,
    occurred_at DATETIME(6) NOT NULL,
    body        MEDIUMBLOB  NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               VARCHAR(64)  NOT NULL,
    endpoint_id      VARCHAR(64)  NOT NULL,
    merchant_id      VARCHAR(64)  NOT NULL,
    event_id         VARCHAR(64)  NOT NULL,
    event_type       VARCHAR(64)  NOT NULL,
    status           VARCHAR(16)  NOT NULL,
    generation       INT          NOT NULL DEFAULT 0,
    attempt_count    INT          NOT NULL DEFAULT 0,
    last_status_code INT          NOT NULL DEFAULT 0,
    last_error       VARCHAR(512) NOT NULL DEFAULT '',
    created_at       DATETIME(6)  NOT NULL,
    updated_at       DATETIME(6)  NOT NULL,
    delivered_at     DATETIME(6)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY webhook_deliveries_endpoint_event_uq (endpoint_id, event_id),
    KEY webhook_deliveries_endpoint_idx (endpoint_id, created_at, id),
    KEY webhook_deliveries_event_idx (event_id),
    CONSTRAINT webhook_deliveries_endpoint_fk FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id),
    CONSTRAINT webhook_deliveries_event_fk FOREIGN KEY (event_id) REFERENCES webhook_events (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id VARCHAR(64)  NOT NULL,
    generation  INT          NOT NULL,
    number      INT          NOT NULL,
    at          DATETIME(6)  NOT NULL,
    status_code INT          NOT NULL DEFAULT 0,
    latency_ms  BIGINT       NOT NULL DEFAULT 0,
    error       VARCHAR(512) NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, generation, number),
    CONSTRAINT webhook_attempts_delivery_fk FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
