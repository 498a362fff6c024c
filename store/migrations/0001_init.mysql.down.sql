-- 0001_init down (MySQL 8 / MariaDB 10.11): drops every table 0001_init.mysql.sql made,
-- children before the tables their foreign keys name. All data is lost.
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS payment_events;
DROP TABLE IF EXISTS istuno_sequences;
DROP TABLE IF EXISTS bank_transfers;
DROP TABLE IF EXISTS refunds;
DROP TABLE IF EXISTS payments;
DROP TABLE IF EXISTS accounts;
DROP TABLE IF EXISTS refresh_tokens;
DROP TABLE IF EXISTS users;
