-- 0006_webhooks (SQLite). Keep in step with 0006_webhooks.mysql.sql.
-- Merchants' webhook endpoints (secrets sealed), the events they were sent, one delivery per
-- endpoint and event, and the log of every attempt.

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                     TEXT      NOT NULL PRIMARY KEY,
    merchant_id            TEXT      NOT NULL,
    url                    TEXT      NOT NULL,
    event_types            TEXT      NOT NULL,
    description            TEXT      NOT NULL DEFAULT '',
    status                 TEXT      NOT NULL,
    secret_ciphertext      BLOB      NOT NULL,
    secret_key_id          TEXT      NOT NULL,
    prev_secret_ciphertext BLOB      NULL,
    prev_secret_key_id     TEXT      NOT NULL DEFAULT '',
    prev_secret_expires_at TIMESTAMP NULL,
    failing_since          TIMESTAMP NULL,
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_merchant_idx ON webhook_endpoints (merchant_id, created_at, id);

CREATE TABLE IF NOT EXISTS webhook_events (
    id          TEXT      NOT NULL PRIMARY KEY,
    type        TEXT      NOT NULL,
    merchant_id TEXT      NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    body        BLOB      NOT NULL,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               TEXT      NOT NULL PRIMARY KEY,
    endpoint_id      TEXT      NOT NULL REFERENCES webhook_endpoints (id),
    merchant_id      TEXT      NOT NULL,
    event_id         TEXT      NOT NULL REFERENCES webhook_events (id),
    event_type       TEXT      NOT NULL,
    status           TEXT      NOT NULL,
    generation       INTEGER   NOT NULL DEFAULT 0,
    attempt_count    INTEGER   NOT NULL DEFAULT 0,
    last_status_code INTEGER   NOT NULL DEFAULT 0,
    last_error       TEXT      NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    delivered_at     TIMESTAMP NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id TEXT      NOT NULL REFERENCES webhook_deliveries (id),
    generation  INTEGER   NOT NULL,
    number      INTEGER   NOT NULL,
    at          TIMESTAMP NOT NULL,
    status_code INTEGER   NOT NULL DEFAULT 0,
    latency_ms  INTEGER   NOT NULL DEFAULT 0,
    error       TEXT      NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, generation, number)
);
