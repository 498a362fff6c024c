-- 0003_refund_destinations (SQLite). Keep in step with 0003_refund_destinations.mysql.sql.
-- An account number typed in by support for a refund, sealed, kept from the moment the API
-- accepts the request until the refund workflow's first step creates the refund row and copies
-- it into refunds.destination_*. No foreign key: the refund does not exist yet.

CREATE TABLE IF NOT EXISTS refund_destinations (
    refund_id  TEXT      NOT NULL PRIMARY KEY,
    kind       TEXT      NOT NULL,
    bank_code  TEXT      NOT NULL,
    ciphertext BLOB      NOT NULL,
    key_id     TEXT      NOT NULL,
    masked     TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL
);
