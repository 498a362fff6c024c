// Package cluster holds the end-to-end test of paysaga on a real Temporal cluster: the
// production server (not the dev server) on PostgreSQL with several history shards, two
// `paysaga api` and two `paysaga worker` processes on MariaDB, Redis and RabbitMQ, reaching
// Temporal over mTLS, a worker killed mid-run, and the money-safety invariants judged from the simulated bank's record.
// Run it with `make test-cluster` (build tag `cluster`).
package cluster
