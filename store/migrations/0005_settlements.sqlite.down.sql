-- 0005_settlements down (SQLite): bank_transfers rebuilt without settlement_id (payouts dropped),
-- then the settlement tables go.
CREATE TABLE bank_transfers_0004 (
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
INSERT INTO bank_transfers_0004 (id, payment_id, refund_id, kind, amount, tsymd, is_tuno, state, rpcd, rsms, created_at, updated_at)
    SELECT id, payment_id, refund_id, kind, amount, tsymd, is_tuno, state, rpcd, rsms, created_at, updated_at
    FROM bank_transfers WHERE settlement_id IS NULL;
DROP TABLE bank_transfers;
ALTER TABLE bank_transfers_0004 RENAME TO bank_transfers;
CREATE UNIQUE INDEX IF NOT EXISTS bank_transfers_istuno_uq ON bank_transfers (tsymd, is_tuno);
CREATE INDEX IF NOT EXISTS bank_transfers_payment_idx ON bank_transfers (payment_id, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_refund_idx ON bank_transfers (refund_id, created_at);
CREATE INDEX IF NOT EXISTS bank_transfers_state_idx ON bank_transfers (state, created_at);
DROP TABLE IF EXISTS settlement_lines;
DROP TABLE IF EXISTS settlements;
DROP TABLE IF EXISTS merchant_settlement_accounts;
