#!/bin/sh
# Registers the custom search attributes of paysaga's workflows on a Temporal cluster, so that
# operators can filter payments in the Web UI and payctl. Safe to run again: an attribute that
# exists with the right type is left alone; one that exists with another type is an error.
#
#   TEMPORAL_ADDRESS=temporal:7233 TEMPORAL_NAMESPACE=default ./register-search-attributes.sh
#
# Needs the Temporal CLI (`temporal`) on PATH, or its path in TEMPORAL_CLI. The list below is
# workflows.SearchAttributeFlags(); deploy/temporalconfig_test.go keeps the two equal and runs
# this script against a dev server.
set -eu

ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
CLI="${TEMPORAL_CLI:-temporal}"
WAIT_SECONDS="${WAIT_SECONDS:-120}"

# name=type, one per line
ATTRIBUTES='
PaymentStatus=Keyword
CustomerId=Keyword
MerchantId=Keyword
NeedsAttention=Bool
'

tctl() { "$CLI" --address "$ADDRESS" --namespace "$NAMESPACE" "$@"; }

# The cluster may still be starting (auto-setup creates its schema first).
waited=0
until tctl operator cluster health >/dev/null 2>&1; do
	if [ "$waited" -ge "$WAIT_SECONDS" ]; then
		echo "register-search-attributes: Temporal at $ADDRESS is not healthy after ${WAIT_SECONDS}s" >&2
		exit 1
	fi
	sleep 2
	waited=$((waited + 2))
done
# …and the namespace may not exist yet: created here when TEMPORAL_NAMESPACE_RETENTION is set
# (docker-compose.yml's one-shot job), otherwise waited for.
if [ -n "${TEMPORAL_NAMESPACE_RETENTION:-}" ] && ! tctl operator namespace describe >/dev/null 2>&1; then
	"$CLI" --address "$ADDRESS" operator namespace create --namespace "$NAMESPACE" --retention "$TEMPORAL_NAMESPACE_RETENTION" >/dev/null
	echo "created namespace $NAMESPACE (retention $TEMPORAL_NAMESPACE_RETENTION)"
fi
until tctl operator namespace describe >/dev/null 2>&1; do
	if [ "$waited" -ge "$WAIT_SECONDS" ]; then
		echo "register-search-attributes: namespace $NAMESPACE does not exist on $ADDRESS" >&2
		exit 1
	fi
	sleep 2
	waited=$((waited + 2))
done

# A namespace just created takes a few seconds to reach every service.
until existing="$(tctl operator search-attribute list 2>&1)"; do
	if [ "$waited" -ge "$WAIT_SECONDS" ]; then
		echo "register-search-attributes: cannot list the search attributes of $NAMESPACE: $existing" >&2
		exit 1
	fi
	sleep 2
	waited=$((waited + 2))
done
for attr in $ATTRIBUTES; do
	name="${attr%%=*}"
	type="${attr#*=}"
	have="$(printf '%s\n' "$existing" | awk -v n="$name" '$1 == n { print $2 }')"
	if [ -z "$have" ]; then
		tctl operator search-attribute create --name "$name" --type "$type" >/dev/null
		echo "created $name ($type)"
	elif [ "$have" = "$type" ]; then
		echo "exists  $name ($type)"
	else
		echo "register-search-attributes: $name exists as $have, paysaga needs $type" >&2
		exit 1
	fi
done
