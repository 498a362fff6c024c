-- 0002_account_registrations down (MySQL 8 / MariaDB 10.11): the sealed birth dates of
-- registrations in progress go (those registrations cannot be checked again).
DROP TABLE IF EXISTS account_registrations;
