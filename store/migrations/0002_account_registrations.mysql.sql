-- 0002_account_registrations (MySQL 8 / MariaDB 10.11). Keep in step with the SQLite variant.
-- The holder's birth date, sealed (AES-GCM, key id beside it), kept only while the bank is
-- registering the account: the fin-account check call needs it on every poll, and it must not
-- travel through workflow history. The row is deleted when the registration ends. A table
-- rather than columns on accounts so that the script stays re-runnable (CREATE … IF NOT EXISTS
-- exists on both servers; ADD COLUMN IF NOT EXISTS does not).

CREATE TABLE IF NOT EXISTS account_registrations (
    account_id       VARCHAR(64)    NOT NULL,
    birth_ciphertext VARBINARY(256) NOT NULL,
    birth_key_id     VARCHAR(64)    NOT NULL,
    created_at       DATETIME(6)    NOT NULL,
    PRIMARY KEY (account_id),
    CONSTRAINT account_registrations_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
