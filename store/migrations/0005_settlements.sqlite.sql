-- 0005_settlements (SQLite). Keep in step with 0005_settlements.mysql.sql.
-- bank_transfers gets a nullable payment_id and a settlement_id: SQLite cannot change a
-- column's NOT NULL, so the table is rebuilt (nothing references it), inside the migration's
-- transaction.

CREATE TABLE IF NOT EXISTS merchant_settlement_accounts (
    merchant_id       TEXT      NOT NULL PRIMARY KEY REFERENCES users (id),
    bank_code         TEXT      NOT NULL DEFAULT '',
    number_ciphertext BLOB      NULL,
    number_key_id     TEXT      NOT NULL DEFAULT '',
    masked_number     TEXT      NOT NULL DEFAULT '',
    fee_bps           INTEGER   NULL CHECK (fee_bps IS NULL OR (fee_bps >= 0 AND fee_bps <= 10000)),
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS settlements (
    id              TEXT      NOT NULL PRIMARY KEY,
    merchant_id     TEXT      NOT NULL,
    day             TEXT      NOT NULL,
    status          TEXT      NOT NULL,
    fee_bps         INTEGER   NOT NULL,
    payment_count   INTEGER   NOT NULL,
    refund_count    INTEGER   NOT NULL,
    payment_amount  INTEGER   NOT NULL,
    refund_amount   INTEGER   NOT NULL,
    fee_amount      INTEGER   NOT NULL,
    carry_in        INTEGER   NOT NULL,
    carry_from      TEXT      NULL UNIQUE,
    net             INTEGER   NOT NULL,
    payout          INTEGER   NOT NULL,
    carry_out       INTEGER   NOT NULL,
    transfer_id     TEXT      NOT NULL DEFAULT '',
    payout_bank_code  TEXT    NOT NULL DEFAULT '',
    payout_ciphertext BLOB    NULL,
    payout_key_id     TEXT    NOT NULL DEFAULT '',
    failure_code    TEXT      NOT NULL DEFAULT '',
    failure_message TEXT      NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    CHECK (payout >= 0 AND carry_in <= 0 AND carry_out <= 0 AND fee_amount >= 0
        AND net = payment_amount - refund_amount - fee_amount + carry_in AND payout + carry_out = net)
);
CREATE UNIQUE INDEX IF NOT EXISTS settlements_merchant_day_uq ON settlements (merchant_id, day);
CREATE INDEX IF NOT EXISTS settlements_created_idx ON settlements (created_at, id);
CREATE INDEX IF NOT EXISTS settlements_merchant_idx ON settlements (merchant_id, created_at, id);

CREATE TABLE IF NOT EXISTS settlement_lines (
    kind          TEXT      NOT NULL,
    item_id       TEXT      NOT NULL,
    settlement_id TEXT      NOT NULL REFERENCES settlements (id),
    payment_id    TEXT      NOT NULL REFERENCES payments (id),
    refund_id     TEXT      NULL,
    amount        INTEGER   NOT NULL,
    fee           INTEGER   NOT NULL,
    occurred_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, item_id)
);
CREATE INDEX IF NOT EXISTS settlement_lines_settlement_idx ON settlement_lines (settlement_id, occurred_at);

CREATE TABLE bank_transfers_0005 (
    id            TEXT      NOT NULL PRIMARY KEY,
    payment_id    TEXT      NULL REFERENCES payments (id),
    refund_id     TEXT      NULL REFERENCES refunds (id),
    settlement_id TEXT      NULL REFERENCES settlements (id),
    kind          TEXT      NOT NULL,
    amount        INTEGER   NOT NULL,
    tsymd         TEXT      NOT NULL,
    is_tuno       TEXT      NOT NULL,
    state         TEXT      NOT NULL,
    rpcd          TEXT      NOT NULL DEFAULT '',
    rsms          TEXT      NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    CHECK (payment_id IS NOT NULL OR settlement_id IS NOT NULL)
);
INSERT INTO bank_transfers_0005 (id, payment_id, refund_id, kind, amount, tsymd, is_tuno, state, rpcd, rsms, created_at, updated_at)
    SELECT id, payment_id, refund_id, kind, amount, tsymd, is_tuno, state, rpcd, rsms, created_at, updated_at FROM bank_transfers;
DROP TABLE bank_transfers;
ALTER TABLE bank_transfers_0005 RENAME TO bank_transfers;
CREATE UNIQUE INDEX IF NOT EXISTS bank_transfers_istuno_uq ON bank_transfers (tsymd, is_tuno);
CREATE INDEX IF NOT EXISTS bank_transfers_payment_idx ON bank_transfers (payment_id, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_refund_idx ON bank_transfers (refund_id, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_state_idx ON bank_transfers (state, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_settlement_idx ON bank_transfers (settlement_id, created_at);
