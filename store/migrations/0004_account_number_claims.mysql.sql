-- 0004_account_number_claims (MySQL 8 / MariaDB 10.11). Keep in step with the SQLite variant.
-- A bank account number is held only by an ACTIVE (bank-verified) registration: the row of
-- account_number_claims exists while its account is ACTIVE, and its primary key makes that one
-- per bank and number. A PENDING, FAILED or DELETED registration holds nothing, so a stranger's
-- attempt (or one still in flight at the bank) never keeps the real holder out. The unique key
-- on accounts becomes per owner: a customer has one account row per number, registered again
-- after a failure or a deletion.
-- Re-runnable: CREATE … IF NOT EXISTS, INSERT IGNORE, and the index swap done in one ALTER
-- only while the old index is still there (MySQL 8 has no DROP INDEX IF EXISTS).

CREATE TABLE IF NOT EXISTS account_number_claims (
    bank_code   VARCHAR(8)  NOT NULL,
    number_hash CHAR(64)    NOT NULL,
    account_id  VARCHAR(64) NOT NULL,
    PRIMARY KEY (bank_code, number_hash),
    UNIQUE KEY account_number_claims_account_uq (account_id),
    CONSTRAINT account_number_claims_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO account_number_claims (bank_code, number_hash, account_id)
    SELECT bank_code, number_hash, id FROM accounts WHERE status = 'ACTIVE';

SET @paysaga_0004 = (SELECT IF(COUNT(*) > 0,
    'ALTER TABLE accounts DROP INDEX accounts_bank_number_uq, ADD UNIQUE KEY accounts_owner_number_uq (owner_id, bank_code, number_hash)',
    'DO 0')
    FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = 'accounts' AND index_name = 'accounts_bank_number_uq');
PREPARE paysaga_0004 FROM @paysaga_0004;
EXECUTE paysaga_0004;
DEALLOCATE PREPARE paysaga_0004;
