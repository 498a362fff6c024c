#!/bin/sh
# Creates Temporal's two databases and brings their schemas up to the version of the
# temporal-sql-tool that runs it (the temporalio/admin-tools image of the server's version).
# Safe to run again: an existing database is kept, and update-schema applies only what is new.
#
#   DB=mysql8 MYSQL_SEEDS=mysql DB_PORT=3306 MYSQL_USER=temporal MYSQL_PWD=… sh setup-schema.sh
#
# (postgres12: POSTGRES_SEEDS, POSTGRES_USER, POSTGRES_PWD instead; the same names as the
# temporalio/server image reads.)
set -eu

PLUGIN="${DB:-mysql8}"
case "$PLUGIN" in
mysql8)
	HOST="${MYSQL_SEEDS:?}" USER_="${MYSQL_USER:?}" PW="${MYSQL_PWD:-}" PORT="${DB_PORT:-3306}"
	SCHEMA="${SCHEMA_DIR:-/etc/temporal/schema/mysql/v8}" ;;
postgres12)
	HOST="${POSTGRES_SEEDS:?}" USER_="${POSTGRES_USER:?}" PW="${POSTGRES_PWD:-}" PORT="${DB_PORT:-5432}"
	SCHEMA="${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}" ;;
*)
	echo "setup-schema: DB=$PLUGIN is not mysql8 or postgres12" >&2
	exit 1 ;;
esac


tool() { temporal-sql-tool --plugin "$PLUGIN" --ep "$HOST" -p "$PORT" -u "$USER_" --pw "$PW" "$@"; }

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
	db="${pair%%:*}"
	kind="${pair#*:}"
	# The database server may still be starting: try for two minutes. A database that exists
	# already is kept.
	tries=0
	until out="$(tool --db "$db" create-database 2>&1)" || printf '%s' "$out" | grep -qi 'exists'; do
		tries=$((tries + 1))
		if [ "$tries" -ge 60 ]; then
			printf 'setup-schema: cannot create %s on %s at %s:%s as %s:\n%s\n' "$db" "$PLUGIN" "$HOST" "$PORT" "$USER_" "$out" >&2
			exit 1
		fi
		sleep 2
	done
	# Version 0.0 once (it fails harmlessly when the schema table exists), then every version
	# the tool knows.
	tool --db "$db" setup-schema -v 0.0 >/dev/null 2>&1 || true
	tool --db "$db" update-schema -d "$SCHEMA/$kind/versioned"
	echo "setup-schema: $db ($kind) up to date"
done
