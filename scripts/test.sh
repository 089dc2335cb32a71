#!/usr/bin/env bash
# Runs every test: starts a throwaway PostgreSQL, Redis and tansu broker on free ports, runs the workspace's
# tests against them (each test makes its own database, topics and queue names), then stops them.
# `scripts/test.sh faults` runs only the fault suite (system-tests/tests/faults.rs), with its report printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_dependencies
WORK=$(mktemp -d /tmp/receipts-test.XXXXXX)
[ "$(id -u)" -eq 0 ] && chmod 755 "$WORK"
PG_PORT=$(free_port); REDIS_PORT=$(free_port); KAFKA_PORT=$(free_port)
cleanup() {
  stop_pidfile "$WORK/tansu.pid"
  stop_redis "$WORK/redis"
  stop_postgres "$WORK/postgres"
  rm -rf "$WORK"
}
trap cleanup EXIT

log "test services: PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, tansu :$KAFKA_PORT"
PG_FSYNC=off start_postgres "$WORK/postgres" "$PG_PORT"
start_redis "$WORK/redis" "$REDIS_PORT"
start_tansu "$WORK" "$KAFKA_PORT"
wait_for_port "$KAFKA_PORT" tansu

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
export TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export TEST_TANSU_BIN="$TANSU_BIN"
export PYTHONPATH="$OPENAPI_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_PYTHONPATH PLAYWRIGHT_DIR
export RUST_LOG="${RUST_LOG:-warn}"
# Tests that run the services as processes find the binaries beside their own executables.
cargo build --bins
if [ "${1:-}" = "faults" ]; then
  cargo test -p system-tests --test faults -- --nocapture --test-threads=1
else
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi
