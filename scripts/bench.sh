#!/usr/bin/env bash
# The benchmarks (docs/performance.md), on release builds with PostgreSQL's fsync and synchronous_commit on:
#   intake     the pgbench ceiling, intake flat out with the whole pipeline and alone (the consumer stopped), the
#              rate intake sustains with the whole pipeline behind it
#              (BENCH_SATURATION_SECONDS, default 300), the whole pipeline at 80% of that (BENCH_PIPELINE_SECONDS,
#              default 300) with backlog, lag and freshness sampled, and every process's peak memory
#   drain      the consumer draining two backlogs, one as intake builds it and one sparse (BENCH_DRAIN_RECEIPTS
#              each, default 500,000)
#   analytics  analytics at scale over HTTP, on a PostgreSQL of its own in .bench/ (kept between runs, so each
#              dataset is seeded once); BENCH_DATASETS chooses the datasets
#   steady     only when named: the whole pipeline at a fixed rate on a fresh stack, to compare two builds or
#              settings (scripts/steady.sh; BENCH_STEADY_RATE, BENCH_STEADY_SECONDS, BENCH_STEADY_MAX_IN_FLIGHT,
#              BENCH_BIN_DIR)
# `scripts/bench.sh` runs all three; `scripts/bench.sh intake drain` (any of them, in that order) some. Each
# writes its part to target/bench/; the run's report, with its charts, goes to bench/results/<date>/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_dependencies
cargo build --release --bins
which=" ${*:-intake drain analytics} "
rm -f target/bench/*.md target/bench/*.svg target/bench/*.png

if [[ "$which" == *" intake "* ]]; then
  PGBENCH="$(pg_bin_dir)/pgbench" TEST_TANSU_BIN="$TANSU_BIN" cargo bench -p system-tests --bench intake
fi

if [[ "$which" == *" drain "* ]]; then
  TEST_TANSU_BIN="$TANSU_BIN" cargo bench -p system-tests --bench drain
fi

if [[ "$which" == *" steady "* ]]; then
  scripts/steady.sh
fi

if [[ "$which" == *" analytics "* ]]; then
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

RESULTS="bench/results/$(date -u +%Y-%m-%d)"
mkdir -p "$RESULTS"
{
  echo "# Benchmark report, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
    "commit $(git rev-parse --short HEAD)$(git diff --quiet -- . ':!bench/results' || echo ' (with uncommitted changes)');" \
    "command: \`scripts/bench.sh${*:+ $*}\`."
  for part in intake drain steady analytics; do
    if [ -f "target/bench/$part.md" ]; then
      echo
      echo "## $part"
      echo
      cat "target/bench/$part.md"
    fi
  done
  for chart in target/bench/*.png target/bench/*.svg; do
    [ -f "$chart" ] && printf '\n![%s](%s)\n' "$(basename "${chart%.*}")" "$(basename "$chart")"
  done
} > "$RESULTS/report.md"
cp target/bench/*.png target/bench/*.svg "$RESULTS/" 2>/dev/null || true
log "report: $RESULTS/report.md"
