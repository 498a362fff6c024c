-- 0004_account_number_claims down (SQLite): an account number is unique per bank again (fails,
-- changing nothing, while two owners have the same number registered), and the claims go.
CREATE UNIQUE INDEX IF NOT EXISTS accounts_bank_number_uq ON accounts (bank_code, number_hash);
DROP INDEX IF EXISTS accounts_owner_number_uq;
DROP TABLE IF EXISTS account_number_claims;
