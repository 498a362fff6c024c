// Package store is the only package that speaks SQL. It wraps Bun on MySQL/MariaDB (production)
// and SQLite (the embedded default), runs the versioned migrations for both dialects (bun/migrate,
// see migrate.go: up and down scripts, a lock, a dirty mark), and holds
// the repositories, which take and return the domain types of package paysaga and report
// failures as paysaga.Error codes (ENOTFOUND, ECONFLICT, …).
//
// The schema lives in one place: migrations/NNNN_name.{mysql,sqlite}.sql, one file per dialect
// per version, kept in step, each with its down script NNNN_name.{mysql,sqlite}.down.sql.
// Tables (migration 0001):
//
//	users             id, email (unique), name, password_hash, role, created_at
//	refresh_tokens    id, user_id → users, family_id, token_hash (SHA-256 hex, unique),
//	                  expires_at, used_at, revoked_at, created_at
//	accounts          id, owner_id → users, bank_code, number_ciphertext, number_key_id,
//	                  number_hash (HMAC, unique per bank_code), masked_number, nickname,
//	                  fin_account, rgno, status, failure_code/message, created_at, updated_at
//	payments          id, customer_id → users, merchant_id, account_id → accounts, amount,
//	                  refunded_amount, reserved_refund_amount (CHECK: their sum ≤ amount),
//	                  currency, description, status, capture_mode, failure_code/message,
//	                  version, created_at, updated_at; (customer|merchant|status, created_at, id)
//	                  indexes for newest-first cursor lists
//	refunds           id, payment_id → payments, amount, reason, status, destination_* (kind,
//	                  bank code, encrypted number, key id, masked), failure_code/message,
//	                  created_by, created_at, updated_at
//	bank_transfers    id, payment_id → payments, refund_id → refunds (NULL for debits), kind,
//	                  amount, tsymd, is_tuno (UNIQUE(tsymd, is_tuno)), state, rpcd, rsms,
//	                  created_at, updated_at
//	istuno_sequences  tsymd (PK), last_value — the per-day IsTuno counter (see NextIsTuno)
//	payment_events    id (the stable event id), payment_id → payments, refund_id, type, status,
//	                  rpcd, rsms, actor, reason, created_at; index (payment_id, created_at)
//	idempotency_keys  PK(scope, idem_key), request_hash, state (pending|completed),
//	                  response_status, response_body, resource_id, created_at, expires_at
//	bun_migrations    id, name (the version NNNN), group_id (the Migrate run), migrated_at;
//	                  bun_migrations_dirty: versions started and not finished (see migrate.go);
//	                  bun_migration_locks (bun's, unused). schema_migrations: the record of the
//	                  migrator before bun/migrate, imported once and no longer written
//
// Conventions for repositories: IDs are VARCHAR(64) public IDs; times are stored in UTC with
// microsecond precision (use store's clock, DB.Now); optional text columns are NOT NULL DEFAULT
// empty string (plain Go strings), optional foreign keys (refund_id) are NULL, so map "" with the Bun tag
// `nullzero`. MySQL tables use utf8mb4_bin, so string comparison is case-sensitive on both
// dialects. A new schema change is a new migration version with both variants; never edit an
// applied one.
package store
