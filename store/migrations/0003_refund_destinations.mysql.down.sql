-- 0003_refund_destinations down (MySQL 8 / MariaDB 10.11): typed-in destinations not yet
-- copied into their refund go (those refunds cannot start).
DROP TABLE IF EXISTS refund_destinations;
