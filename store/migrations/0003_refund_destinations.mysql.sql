-- 0003_refund_destinations (MySQL 8 / MariaDB 10.11). Keep in step with the SQLite variant.
-- An account number typed in by support for a refund, sealed (AES-GCM, key id beside it), kept
-- from the moment the API accepts the request until the refund workflow's first step creates the
-- refund row and copies it into refunds.destination_*: the number must not travel through
-- workflow history, and the refund row only exists once its amount is reserved. No foreign key:
-- the refund does not exist yet when this row is written. A table rather than columns so that
-- the script stays re-runnable.

CREATE TABLE IF NOT EXISTS refund_destinations (
    refund_id   VARCHAR(64)    NOT NULL,
    kind        VARCHAR(32)    NOT NULL,
    bank_code   VARCHAR(8)     NOT NULL,
    ciphertext  VARBINARY(512) NOT NULL,
    key_id      VARCHAR(64)    NOT NULL,
    masked      VARCHAR(32)    NOT NULL,
    created_at  DATETIME(6)    NOT NULL,
    PRIMARY KEY (refund_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
