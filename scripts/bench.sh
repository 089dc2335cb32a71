#!/usr/bin/env bash
# The benchmarks (docs/performance.md), on release builds with PostgreSQL's fsync and synchronous_commit on:
#   analytics  analytics at scale over HTTP, on a PostgreSQL of its own in .bench/ (kept between runs, so each
#              dataset is seeded once); BENCH_DATASETS chooses the datasets
#   drain      the consumer draining a backlog, on a whole stack of release processes; BENCH_DRAIN_RECEIPTS
#              sets the backlog
# `scripts/bench.sh` runs both; `scripts/bench.sh drain` (or analytics) one. Reports go to target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_dependencies
cargo build --release --bins
which="${1:-all}"

if [ "$which" = all ] || [ "$which" = analytics ]; then
  STATE="$PWD/.bench"
  PG_PORT=$(free_port)
  mkdir -p "$STATE"
  [ "$(id -u)" -eq 0 ] && chmod 755 "$STATE"
  # Memory for a machine of this size (24 GiB): a quarter for shared buffers, as PostgreSQL's manual suggests.
  PG_OPTIONS="-c shared_buffers=4GB -c work_mem=64MB -c maintenance_work_mem=1GB -c max_wal_size=8GB" \
    start_postgres "$STATE/postgres" "$PG_PORT"
  trap 'stop_postgres "$STATE/postgres"' EXIT
  log "benchmark PostgreSQL on $PG_PORT (data in .bench/)"
  BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
    cargo bench -p system-tests --bench analytics
  stop_postgres "$STATE/postgres"
  trap - EXIT
fi

if [ "$which" = all ] || [ "$which" = drain ]; then
  TEST_TANSU_BIN="$TANSU_BIN" cargo bench -p system-tests --bench drain
fi
