-- 0001_init (SQLite). Keep in step with 0001_init.mysql.sql: same tables, columns, keys.
-- Times are TIMESTAMP text in UTC as Bun writes them ('2006-01-02 15:04:05.999999+00:00'),
-- which sort and compare correctly as text.

CREATE TABLE IF NOT EXISTS users (
    id            TEXT      NOT NULL PRIMARY KEY,
    email         TEXT      NOT NULL,
    name          TEXT      NOT NULL,
    password_hash TEXT      NOT NULL,
    role          TEXT      NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_uq ON users (email);

CREATE TABLE IF NOT EXISTS refresh_tokens (
    id         TEXT      NOT NULL PRIMARY KEY,
    user_id    TEXT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT      NOT NULL,
    token_hash TEXT      NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP NULL,
    revoked_at TIMESTAMP NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS refresh_tokens_hash_uq ON refresh_tokens (token_hash);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE IF NOT EXISTS accounts (
    id                TEXT      NOT NULL PRIMARY KEY,
    owner_id          TEXT      NOT NULL REFERENCES users (id),
    bank_code         TEXT      NOT NULL,
    number_ciphertext BLOB      NOT NULL,
    number_key_id     TEXT      NOT NULL,
    number_hash       TEXT      NOT NULL,
    masked_number     TEXT      NOT NULL,
    nickname          TEXT      NOT NULL DEFAULT '',
    fin_account       TEXT      NOT NULL DEFAULT '',
    rgno              TEXT      NOT NULL DEFAULT '',
    status            TEXT      NOT NULL,
    failure_code      TEXT      NOT NULL DEFAULT '',
    failure_message   TEXT      NOT NULL DEFAULT '',
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_bank_number_uq ON accounts (bank_code, number_hash);
CREATE INDEX IF NOT EXISTS accounts_owner_idx ON accounts (owner_id, created_at, id);

CREATE TABLE IF NOT EXISTS payments (
    id                     TEXT      NOT NULL PRIMARY KEY,
    customer_id            TEXT      NOT NULL REFERENCES users (id),
    merchant_id            TEXT      NOT NULL,
    account_id             TEXT      NOT NULL REFERENCES accounts (id),
    amount                 INTEGER   NOT NULL,
    refunded_amount        INTEGER   NOT NULL DEFAULT 0,
    reserved_refund_amount INTEGER   NOT NULL DEFAULT 0,
    currency               TEXT      NOT NULL DEFAULT 'KRW',
    description            TEXT      NOT NULL DEFAULT '',
    status                 TEXT      NOT NULL,
    capture_mode           TEXT      NOT NULL DEFAULT 'automatic',
    failure_code           TEXT      NOT NULL DEFAULT '',
    failure_message        TEXT      NOT NULL DEFAULT '',
    version                INTEGER   NOT NULL DEFAULT 1,
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL,
    -- A safety net under the refund reservation's conditional UPDATE: never refund more than paid.
    CONSTRAINT payments_amounts_ck CHECK (amount > 0 AND refunded_amount >= 0 AND reserved_refund_amount >= 0
        AND refunded_amount + reserved_refund_amount <= amount)
);
CREATE INDEX IF NOT EXISTS payments_customer_idx ON payments (customer_id, created_at, id);
CREATE INDEX IF NOT EXISTS payments_merchant_idx ON payments (merchant_id, created_at, id);
CREATE INDEX IF NOT EXISTS payments_status_idx ON payments (status, created_at, id);
CREATE INDEX IF NOT EXISTS payments_created_idx ON payments (created_at, id);
CREATE INDEX IF NOT EXISTS payments_account_idx ON payments (account_id);

CREATE TABLE IF NOT EXISTS refunds (
    id                     TEXT      NOT NULL PRIMARY KEY,
    payment_id             TEXT      NOT NULL REFERENCES payments (id),
    amount                 INTEGER   NOT NULL CHECK (amount > 0),
    reason                 TEXT      NOT NULL DEFAULT '',
    status                 TEXT      NOT NULL,
    destination_kind       TEXT      NOT NULL DEFAULT 'fin_account',
    destination_bank_code  TEXT      NOT NULL DEFAULT '',
    destination_ciphertext BLOB      NULL,
    destination_key_id     TEXT      NOT NULL DEFAULT '',
    destination_masked     TEXT      NOT NULL DEFAULT '',
    failure_code           TEXT      NOT NULL DEFAULT '',
    failure_message        TEXT      NOT NULL DEFAULT '',
    created_by             TEXT      NOT NULL,
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_payment_idx ON refunds (payment_id, created_at, id);
CREATE INDEX IF NOT EXISTS refunds_status_idx ON refunds (status, created_at, id);

CREATE TABLE IF NOT EXISTS bank_transfers (
    id         TEXT      NOT NULL PRIMARY KEY,
    payment_id TEXT      NOT NULL REFERENCES payments (id),
    refund_id  TEXT      NULL REFERENCES refunds (id),
    kind       TEXT      NOT NULL,
    amount     INTEGER   NOT NULL,
    tsymd      TEXT      NOT NULL,
    is_tuno    TEXT      NOT NULL,
    state      TEXT      NOT NULL,
    rpcd       TEXT      NOT NULL DEFAULT '',
    rsms       TEXT      NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS bank_transfers_istuno_uq ON bank_transfers (tsymd, is_tuno);
CREATE INDEX IF NOT EXISTS bank_transfers_payment_idx ON bank_transfers (payment_id, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_refund_idx ON bank_transfers (refund_id, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_state_idx ON bank_transfers (state, created_at);

CREATE TABLE IF NOT EXISTS istuno_sequences (
    tsymd      TEXT    NOT NULL PRIMARY KEY,
    last_value INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS payment_events (
    id         TEXT      NOT NULL PRIMARY KEY,
    payment_id TEXT      NOT NULL REFERENCES payments (id),
    refund_id  TEXT      NULL,
    type       TEXT      NOT NULL,
    status     TEXT      NOT NULL DEFAULT '',
    rpcd       TEXT      NOT NULL DEFAULT '',
    rsms       TEXT      NOT NULL DEFAULT '',
    actor      TEXT      NOT NULL DEFAULT '',
    reason     TEXT      NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_events_payment_idx ON payment_events (payment_id, created_at);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope           TEXT      NOT NULL,
    idem_key        TEXT      NOT NULL,
    request_hash    TEXT      NOT NULL,
    state           TEXT      NOT NULL,
    response_status INTEGER   NOT NULL DEFAULT 0,
    response_body   BLOB      NULL,
    resource_id     TEXT      NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_idx ON idempotency_keys (expires_at);
