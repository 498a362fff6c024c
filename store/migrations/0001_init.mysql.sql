-- 0001_init (MySQL 8 / MariaDB 10.11). Keep in step with 0001_init.sqlite.sql.
-- Conventions: IDs are VARCHAR(64) public IDs (usr_…, pay_…); times are DATETIME(6) in UTC;
-- money is BIGINT won; optional text is NOT NULL DEFAULT '' except foreign keys, which are NULL.
-- Tables use utf8mb4_bin so comparisons are case-sensitive, exactly as on SQLite.

CREATE TABLE IF NOT EXISTS users (
    id            VARCHAR(64)  NOT NULL,
    email         VARCHAR(254) NOT NULL,
    name          VARCHAR(200) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY users_email_uq (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS refresh_tokens (
    id         VARCHAR(64) NOT NULL,
    user_id    VARCHAR(64) NOT NULL,
    family_id  VARCHAR(64) NOT NULL,
    token_hash CHAR(64)    NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    used_at    DATETIME(6) NULL,
    revoked_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY refresh_tokens_hash_uq (token_hash),
    KEY refresh_tokens_family_idx (family_id),
    KEY refresh_tokens_user_idx (user_id),
    CONSTRAINT refresh_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS accounts (
    id                VARCHAR(64)    NOT NULL,
    owner_id          VARCHAR(64)    NOT NULL,
    bank_code         VARCHAR(8)     NOT NULL,
    number_ciphertext VARBINARY(512) NOT NULL,
    number_key_id     VARCHAR(64)    NOT NULL,
    number_hash       CHAR(64)       NOT NULL,
    masked_number     VARCHAR(32)    NOT NULL,
    nickname          VARCHAR(100)   NOT NULL DEFAULT '',
    fin_account       VARCHAR(64)    NOT NULL DEFAULT '',
    rgno              VARCHAR(64)    NOT NULL DEFAULT '',
    status            VARCHAR(16)    NOT NULL,
    failure_code      VARCHAR(16)    NOT NULL DEFAULT '',
    failure_message   VARCHAR(1000)  NOT NULL DEFAULT '',
    created_at        DATETIME(6)    NOT NULL,
    updated_at        DATETIME(6)    NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY accounts_bank_number_uq (bank_code, number_hash),
    KEY accounts_owner_idx (owner_id, created_at, id),
    CONSTRAINT accounts_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS payments (
    id                     VARCHAR(64)   NOT NULL,
    customer_id            VARCHAR(64)   NOT NULL,
    merchant_id            VARCHAR(64)   NOT NULL,
    account_id             VARCHAR(64)   NOT NULL,
    amount                 BIGINT        NOT NULL,
    refunded_amount        BIGINT        NOT NULL DEFAULT 0,
    reserved_refund_amount BIGINT        NOT NULL DEFAULT 0,
    currency               CHAR(3)       NOT NULL DEFAULT 'KRW',
    description            VARCHAR(500)  NOT NULL DEFAULT '',
    status                 VARCHAR(32)   NOT NULL,
    capture_mode           VARCHAR(16)   NOT NULL DEFAULT 'automatic',
    failure_code           VARCHAR(16)   NOT NULL DEFAULT '',
    failure_message        VARCHAR(1000) NOT NULL DEFAULT '',
    version                BIGINT        NOT NULL DEFAULT 1,
    created_at             DATETIME(6)   NOT NULL,
    updated_at             DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    KEY payments_customer_idx (customer_id, created_at, id),
    KEY payments_merchant_idx (merchant_id, created_at, id),
    KEY payments_status_idx (status, created_at, id),
    KEY payments_created_idx (created_at, id),
    KEY payments_account_idx (account_id),
    CONSTRAINT payments_customer_fk FOREIGN KEY (customer_id) REFERENCES users (id),
    CONSTRAINT payments_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id),
    -- A safety net under the refund reservation's conditional UPDATE: never refund more than paid.
    CONSTRAINT payments_amounts_ck CHECK (amount > 0 AND refunded_amount >= 0 AND reserved_refund_amount >= 0
        AND refunded_amount + reserved_refund_amount <= amount)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS refunds (
    id                       VARCHAR(64)    NOT NULL,
    payment_id               VARCHAR(64)    NOT NULL,
    amount                   BIGINT         NOT NULL,
    reason                   VARCHAR(500)   NOT NULL DEFAULT '',
    status                   VARCHAR(16)    NOT NULL,
    -- Where the money goes: 'fin_account' (the payment's account), 'account_number' or 'other_bank'.
    destination_kind         VARCHAR(32)    NOT NULL DEFAULT 'fin_account',
    destination_bank_code    VARCHAR(8)     NOT NULL DEFAULT '',
    destination_ciphertext   VARBINARY(512) NULL,
    destination_key_id       VARCHAR(64)    NOT NULL DEFAULT '',
    destination_masked       VARCHAR(32)    NOT NULL DEFAULT '',
    failure_code             VARCHAR(16)    NOT NULL DEFAULT '',
    failure_message          VARCHAR(1000)  NOT NULL DEFAULT '',
    created_by               VARCHAR(64)    NOT NULL,
    created_at               DATETIME(6)    NOT NULL,
    updated_at               DATETIME(6)    NOT NULL,
    PRIMARY KEY (id),
    KEY refunds_payment_idx (payment_id, created_at, id),
    KEY refunds_status_idx (status, created_at, id),
    CONSTRAINT refunds_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (id),
    CONSTRAINT refunds_amount_ck CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS bank_transfers (
    id         VARCHAR(64)   NOT NULL,
    payment_id VARCHAR(64)   NOT NULL,
    refund_id  VARCHAR(64)   NULL,
    kind       VARCHAR(64)   NOT NULL,
    amount     BIGINT        NOT NULL,
    tsymd      CHAR(8)       NOT NULL,
    is_tuno    VARCHAR(32)   NOT NULL,
    state      VARCHAR(16)   NOT NULL,
    rpcd       VARCHAR(16)   NOT NULL DEFAULT '',
    rsms       VARCHAR(1000) NOT NULL DEFAULT '',
    created_at DATETIME(6)   NOT NULL,
    updated_at DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY bank_transfers_istuno_uq (tsymd, is_tuno),
    KEY bank_transfers_payment_idx (payment_id, created_at),
    KEY bank_transfers_refund_idx (refund_id, created_at),
    KEY bank_transfers_state_idx (state, created_at),
    CONSTRAINT bank_transfers_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (id),
    CONSTRAINT bank_transfers_refund_fk FOREIGN KEY (refund_id) REFERENCES refunds (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per transaction day: the last IsTuno sequence number handed out that day.
CREATE TABLE IF NOT EXISTS istuno_sequences (
    tsymd      CHAR(8) NOT NULL,
    last_value BIGINT  NOT NULL,
    PRIMARY KEY (tsymd)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Append-only history for support. id is the stable event id (evt_…) also used as the
-- RabbitMQ message_id, so consumers can drop duplicates.
CREATE TABLE IF NOT EXISTS payment_events (
    id         VARCHAR(64)   NOT NULL,
    payment_id VARCHAR(64)   NOT NULL,
    refund_id  VARCHAR(64)   NULL,
    type       VARCHAR(64)   NOT NULL,
    status     VARCHAR(32)   NOT NULL DEFAULT '',
    rpcd       VARCHAR(16)   NOT NULL DEFAULT '',
    rsms       VARCHAR(1000) NOT NULL DEFAULT '',
    actor      VARCHAR(64)   NOT NULL DEFAULT '',
    reason     VARCHAR(1000) NOT NULL DEFAULT '',
    created_at DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    KEY payment_events_payment_idx (payment_id, created_at),
    CONSTRAINT payment_events_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- scope is the caller (user id) plus the operation, so two callers never share a key.
-- state: 'pending' while the first request runs, 'completed' once its answer is stored.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope           VARCHAR(128) NOT NULL,
    idem_key        VARCHAR(255) NOT NULL,
    request_hash    CHAR(64)     NOT NULL,
    state           VARCHAR(16)  NOT NULL,
    response_status INT          NOT NULL DEFAULT 0,
    response_body   MEDIUMBLOB   NULL,
    resource_id     VARCHAR(64)  NOT NULL DEFAULT '',
    created_at      DATETIME(6)  NOT NULL,
    expires_at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (scope, idem_key),
    KEY idempotency_keys_expires_idx (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
