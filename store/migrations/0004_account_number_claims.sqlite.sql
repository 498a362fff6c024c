-- 0004_account_number_claims (SQLite). Keep in step with 0004_account_number_claims.mysql.sql.
-- A bank account number is held only by an ACTIVE (bank-verified) registration: the row of
-- account_number_claims exists while its account is ACTIVE. A PENDING, FAILED or DELETED
-- registration holds nothing. The unique index on accounts becomes per owner.

CREATE TABLE IF NOT EXISTS account_number_claims (
    bank_code   TEXT NOT NULL,
    number_hash TEXT NOT NULL,
    account_id  TEXT NOT NULL UNIQUE REFERENCES accounts (id),
    PRIMARY KEY (bank_code, number_hash)
);

INSERT OR IGNORE INTO account_number_claims (bank_code, number_hash, account_id)
    SELECT bank_code, number_hash, id FROM accounts WHERE status = 'ACTIVE';

DROP INDEX IF EXISTS accounts_bank_number_uq;
CREATE UNIQUE INDEX IF NOT EXISTS accounts_owner_number_uq ON accounts (owner_id, bank_code, number_hash);
