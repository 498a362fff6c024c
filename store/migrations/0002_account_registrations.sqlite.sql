-- 0002_account_registrations (SQLite). Keep in step with 0002_account_registrations.mysql.sql.
-- The holder's birth date, sealed (AES-GCM, key id beside it), kept only while the bank is
-- registering the account: the fin-account check call needs it on every poll, and it must not
-- travel through workflow history. The row is deleted when the registration ends.

CREATE TABLE IF NOT EXISTS account_registrations (
    account_id       TEXT      NOT NULL PRIMARY KEY REFERENCES accounts (id),
    birth_ciphertext BLOB      NOT NULL,
    birth_key_id     TEXT      NOT NULL,
    created_at       TIMESTAMP NOT NULL
);
