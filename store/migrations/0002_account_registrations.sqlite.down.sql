-- 0002_account_registrations down (SQLite): the sealed birth dates of
-- registrations in progress go (those registrations cannot be checked again).
DROP TABLE IF EXISTS account_registrations;
