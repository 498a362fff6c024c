-- 0005_settlements down (MySQL 8 / MariaDB 10.11): payouts leave bank_transfers, which gets its
-- NOT NULL payment_id back, then the settlement tables go.
DELETE FROM bank_transfers WHERE settlement_id IS NOT NULL;
ALTER TABLE bank_transfers DROP CONSTRAINT bank_transfers_owner_ck;
ALTER TABLE bank_transfers DROP FOREIGN KEY bank_transfers_settlement_fk;
ALTER TABLE bank_transfers DROP KEY bank_transfers_settlement_idx, DROP COLUMN settlement_id, MODIFY payment_id VARCHAR(64) NOT NULL;
DROP TABLE IF EXISTS settlement_lines;
DROP TABLE IF EXISTS settlements;
DROP TABLE IF EXISTS merchant_settlement_accounts;
