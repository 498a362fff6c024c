-- 0004_account_number_claims down (MySQL 8 / MariaDB 10.11): an account number is unique per
-- bank again (fails, changing nothing, while two owners have the same number registered), and
-- the claims go.
SET @paysaga_0004_down = (SELECT IF(COUNT(*) > 0,
    'ALTER TABLE accounts DROP INDEX accounts_owner_number_uq, ADD UNIQUE KEY accounts_bank_number_uq (bank_code, number_hash)',
    'DO 0')
    FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = 'accounts' AND index_name = 'accounts_owner_number_uq');
PREPARE paysaga_0004_down FROM @paysaga_0004_down;
EXECUTE paysaga_0004_down;
DEALLOCATE PREPARE paysaga_0004_down;
DROP TABLE IF EXISTS account_number_claims;
