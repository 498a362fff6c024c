-- 0005_settlements (MySQL 8 / MariaDB 10.11). Keep in step with 0005_settlements.sqlite.sql.
-- Merchant settlement (issue 17): a merchant's settlement account (sealed like customer
-- accounts) and fee rate, one settlement per (merchant, KST day), its lines (each payment and
-- refund settled once: the primary key), and payouts recorded in bank_transfers like every
-- money-moving call (payment_id NULL, settlement_id set).
-- Re-runnable: CREATE … IF NOT EXISTS, and the bank_transfers change done only while
-- settlement_id is missing (MySQL 8 has no ADD COLUMN IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS merchant_settlement_accounts (
    merchant_id       VARCHAR(64)    NOT NULL,
    bank_code         VARCHAR(8)     NOT NULL DEFAULT '',
    number_ciphertext VARBINARY(512) NULL,
    number_key_id     VARCHAR(64)    NOT NULL DEFAULT '',
    masked_number     VARCHAR(32)    NOT NULL DEFAULT '',
    -- NULL: the default rate (PAYSAGA_SETTLEMENT_FEE_BPS).
    fee_bps           INT            NULL,
    created_at        DATETIME(6)    NOT NULL,
    updated_at        DATETIME(6)    NOT NULL,
    PRIMARY KEY (merchant_id),
    CONSTRAINT merchant_settlement_accounts_user_fk FOREIGN KEY (merchant_id) REFERENCES users (id),
    CONSTRAINT merchant_settlement_accounts_fee_ck CHECK (fee_bps IS NULL OR (fee_bps >= 0 AND fee_bps <= 10000))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS settlements (
    id              VARCHAR(64)   NOT NULL,
    merchant_id     VARCHAR(64)   NOT NULL,
    day             CHAR(10)      NOT NULL,
    status          VARCHAR(16)   NOT NULL,
    fee_bps         INT           NOT NULL,
    payment_count   INT           NOT NULL,
    refund_count    INT           NOT NULL,
    payment_amount  BIGINT        NOT NULL,
    refund_amount   BIGINT        NOT NULL,
    fee_amount      BIGINT        NOT NULL,
    carry_in        BIGINT        NOT NULL,
    -- The settlement whose negative net this one took over: each is taken over once.
    carry_from      VARCHAR(64)   NULL,
    net             BIGINT        NOT NULL,
    payout          BIGINT        NOT NULL,
    carry_out       BIGINT        NOT NULL,
    transfer_id     VARCHAR(64)   NOT NULL DEFAULT '',
    -- Where the last payout was sent (the number sealed as the merchant's): its check asks
    -- about that account even if the merchant registered another meanwhile.
    payout_bank_code  VARCHAR(8)     NOT NULL DEFAULT '',
    payout_ciphertext VARBINARY(512) NULL,
    payout_key_id     VARCHAR(64)    NOT NULL DEFAULT '',
    failure_code    VARCHAR(32)   NOT NULL DEFAULT '',
    failure_message VARCHAR(1000) NOT NULL DEFAULT '',
    created_at      DATETIME(6)   NOT NULL,
    updated_at      DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY settlements_merchant_day_uq (merchant_id, day),
    UNIQUE KEY settlements_carry_from_uq (carry_from),
    KEY settlements_created_idx (created_at, id),
    KEY settlements_merchant_idx (merchant_id, created_at, id),
    CONSTRAINT settlements_amounts_ck CHECK (payout >= 0 AND carry_in <= 0 AND carry_out <= 0 AND fee_amount >= 0
        AND net = payment_amount - refund_amount - fee_amount + carry_in AND payout + carry_out = net)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS settlement_lines (
    kind          VARCHAR(16) NOT NULL,
    item_id       VARCHAR(64) NOT NULL,
    settlement_id VARCHAR(64) NOT NULL,
    payment_id    VARCHAR(64) NOT NULL,
    refund_id     VARCHAR(64) NULL,
    amount        BIGINT      NOT NULL,
    fee           BIGINT      NOT NULL,
    occurred_at   DATETIME(6) NOT NULL,
    PRIMARY KEY (kind, item_id),
    KEY settlement_lines_settlement_idx (settlement_id, occurred_at),
    CONSTRAINT settlement_lines_settlement_fk FOREIGN KEY (settlement_id) REFERENCES settlements (id),
    CONSTRAINT settlement_lines_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

SET @paysaga_0005 = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE bank_transfers MODIFY payment_id VARCHAR(64) NULL, ADD COLUMN settlement_id VARCHAR(64) NULL AFTER refund_id, ADD KEY bank_transfers_settlement_idx (settlement_id, created_at), ADD CONSTRAINT bank_transfers_settlement_fk FOREIGN KEY (settlement_id) REFERENCES settlements (id), ADD CONSTRAINT bank_transfers_owner_ck CHECK (payment_id IS NOT NULL OR settlement_id IS NOT NULL)',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'bank_transfers' AND column_name = 'settlement_id');
PREPARE paysaga_0005 FROM @paysaga_0005;
EXECUTE paysaga_0005;
DEALLOCATE PREPARE paysaga_0005;
