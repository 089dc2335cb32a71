#!/usr/bin/env bash
# The whole pipeline at a fixed rate on a fresh stack, for comparing two builds or settings one change at a
# time (docs/performance.md, "Why intake's latency has episodes"): a fresh PostgreSQL (fsync on), Redis and
# in-memory broker, the release producer, consumer and worker with their defaults (or whatever the
# environment sets), BENCH_STEADY_WARMUP_SECONDS (default 20) of flat-out intake to warm up, a checkpoint
# (so that the rate runs on the warm-up's WAL files recycled, as on a server past its first checkpoint, not
# on new ones created while commits wait: docs/performance.md, "A new cluster's first WAL files"), then
# `loadgen --rate BENCH_STEADY_RATE` (default 3200) for BENCH_STEADY_SECONDS (default 120), with up to
# BENCH_STEADY_MAX_IN_FLIGHT (default 1024) requests unanswered. Writes target/bench/steady.md: latency, answers
# by status, the producer's peak memory, write-ahead log per accepted receipt, autovacuum's passes, the seconds
# whose p99 was over 100 ms, and what PostgreSQL logged meanwhile (statements over a second, autovacuum's
# passes, checkpoints), with times; and each second's throughput and latency to
# target/bench/steady-timeline.csv.
# Run it through `scripts/bench.sh steady`, which builds the release binaries first; BENCH_BIN_DIR runs another
# build's producer, consumer and worker under this checkout's load generator; BENCH_PG_OPTIONS adds PostgreSQL
# server settings (`-c name=value ...`) to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_dependencies
RATE="${BENCH_STEADY_RATE:-3200}"
MAX_IN_FLIGHT="${BENCH_STEADY_MAX_IN_FLIGHT:-1024}"
SECONDS_AT_RATE="${BENCH_STEADY_SECONDS:-120}"
WARMUP_SECONDS="${BENCH_STEADY_WARMUP_SECONDS:-20}"
BIN="${BENCH_BIN_DIR:-$PWD/target/release}"
WORK=$(mktemp -d /tmp/receipts-steady.XXXXXX)
[ "$(id -u)" -eq 0 ] && chmod 755 "$WORK"
PG_PORT=$(free_port); REDIS_PORT=$(free_port); KAFKA_PORT=$(free_port)
PRODUCER_PORT=$(free_port); CONSUMER_PORT=$(free_port); WORKER_PORT=$(free_port)
cleanup() {
  for name in producer consumer worker; do
    [ -f "$WORK/$name.pid" ] && kill "$(cat "$WORK/$name.pid")" 2>/dev/null || true
  done
  sleep 1
  stop_pidfile "$WORK/tansu.pid"
  stop_redis "$WORK/redis"
  stop_postgres "$WORK/postgres"
  rm -rf "$WORK"
}
trap cleanup EXIT

PG_OPTIONS="$PG_ACTIVITY_LOG ${BENCH_PG_OPTIONS:-}" \
  start_postgres "$WORK/postgres" "$PG_PORT"
start_redis "$WORK/redis" "$REDIS_PORT"
start_tansu "$WORK" "$KAFKA_PORT"
wait_for_port "$KAFKA_PORT" tansu
as_pg_user psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE receipts" >/dev/null
sql() { as_pg_user psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d receipts -tAc "$1"; }

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/receipts"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export PRODUCER_ADDR="127.0.0.1:$PRODUCER_PORT" CONSUMER_ADDR="127.0.0.1:$CONSUMER_PORT"
export WORKER_METRICS_ADDR="127.0.0.1:$WORKER_PORT" RUST_LOG="${RUST_LOG:-warn}"
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
BOOTSTRAP_ADMIN_TOKEN="rcpt_$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export BOOTSTRAP_ADMIN_TOKEN
"$BIN/producer" migrate
for name in producer consumer worker; do
  "$BIN/$name" >"$WORK/$name.log" 2>&1 &
  echo $! >"$WORK/$name.pid"
done
wait_until_ready "$WORK" "http://$PRODUCER_ADDR/ready" "http://$CONSUMER_ADDR/ready"

loadgen() {
  target/release/loadgen --producer "http://$PRODUCER_ADDR" --consumer "http://$CONSUMER_ADDR" \
    --token "$BOOTSTRAP_ADMIN_TOKEN" "$@" 2>/dev/null
}
log "warming up: $WARMUP_SECONDS s flat out"
loadgen --seconds "$WARMUP_SECONDS" >"$WORK/warmup.txt"
sql "CHECKPOINT" >/dev/null
wal_before=$(sql "SELECT pg_current_wal_lsn()")
accepted_before=$(sql "SELECT count(*) FROM accepted_receipts")
log_from=$(wc -l <"$WORK/postgres/server.log")
log "the whole pipeline at $RATE receipts/s for $SECONDS_AT_RATE s"
loadgen --rate "$RATE" --seconds "$SECONDS_AT_RATE" --max-in-flight "$MAX_IN_FLIGHT" \
  --timeline "$WORK/timeline.csv" >"$WORK/steady.txt"
producer_peak=$(awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$(cat "$WORK/producer.pid")/status")
accepted=$(($(sql "SELECT count(*) FROM accepted_receipts") - accepted_before))
wal=$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')::bigint")

mkdir -p target/bench
{
  echo "Command: \`BENCH_STEADY_WARMUP_SECONDS=$WARMUP_SECONDS BENCH_STEADY_RATE=$RATE BENCH_STEADY_SECONDS=$SECONDS_AT_RATE BENCH_STEADY_MAX_IN_FLIGHT=$MAX_IN_FLIGHT scripts/bench.sh steady\`" \
    "(binaries: $BIN${BENCH_PG_OPTIONS:+; PostgreSQL settings: $BENCH_PG_OPTIONS})."
  echo
  echo "| what | measured |"
  echo "|---|---|"
  echo "| warm-up, flat out for $WARMUP_SECONDS s | $(grep -m1 '^accepted:' "$WORK/warmup.txt") |"
  echo "| at $RATE receipts/s for $SECONDS_AT_RATE s | $(grep -m1 '^latency' "$WORK/steady.txt"); $(grep -m1 '^answers' "$WORK/steady.txt") |"
  echo "| write-ahead log per accepted receipt, at the rate | $((wal / (accepted > 0 ? accepted : 1))) B ($accepted receipts) |"
  echo "| the producer's peak RSS (warm-up included) | $producer_peak |"
  echo
  echo "Autovacuum's passes from the start, seconds each (PostgreSQL's log):"
  echo
  awk '/automatic vacuum of table/ { match($0, /"[^"]*"/); table = substr($0, RSTART + 1, RLENGTH - 2); sub(/^[^.]*[.][^.]*[.]/, "", table) }
       /system usage:/ && table != "" { match($0, /elapsed: [0-9.]+/); times[table] = times[table] " " substr($0, RSTART + 9, RLENGTH - 9); table = "" }
       END { for (t in times) print "- `" t "`:" times[t] }' "$WORK/postgres/server.log" | sort
  echo
  echo "Seconds at the rate whose p99 was over 100 ms, in runs (UTC; a run goes on across gaps of up to 2 s):"
  echo
  awk -F, '
    function flush() {
      if (first != "") print "- " substr(from, 12, 8) " to " substr(to, 12, 8) " (" last - first + 1 " s): worst second'"'"'s p99 " worst " ms"
    }
    NR > 1 && $6 > 100 {
      if (first == "" || $1 > last + 3) { flush(); first = $1; from = $2; worst = 0 }
      last = $1; to = $2
      if ($6 + 0 > worst) worst = $6 + 0
    }
    END { if (first == "") print "- none"; flush() }' "$WORK/timeline.csv"
  echo
  echo "What PostgreSQL logged at the rate (UTC, when each ended): statements over a second,"
  echo "autovacuum's passes and checkpoints:"
  echo
  tail -n +"$log_from" "$WORK/postgres/server.log" | awk '
    function flush(  what) {
      if (ms != "") {
        what = text
        sub(/.*duration: [0-9.]+ ms +[a-z]+[^:]*: +/, "", what)
        gsub(/[ \t]+/, " ", what)
        print "- " at " statement, " ms " ms: `" substr(what, 1, 90) "`"; shown++
      }
      if (table != "" && match(text, /elapsed: [0-9.]+/)) { print "- " at " autovacuum of `" table "`, " substr(text, RSTART + 9, RLENGTH - 9) " s"; shown++ }
      ms = ""; table = ""
    }
    /^[0-9][0-9][0-9][0-9]-/ {
      flush()
      at = substr($0, 12, 8); text = $0
      if (match($0, /duration: [0-9.]+ ms/)) ms = substr($0, RSTART + 10, RLENGTH - 13)
      if (match($0, /automatic vacuum of table "[^"]*"/)) { table = substr($0, RSTART + 27, RLENGTH - 28); sub(/^[^.]*[.][^.]*[.]/, "", table) }
      if (match($0, /checkpoint (starting|complete).*/)) { print "- " at " " substr($0, RSTART, RLENGTH > 60 ? 60 : RLENGTH); shown++ }
      next
    }
    { text = text " " $0 }
    END { flush(); if (!shown) print "- none" }'
} >target/bench/steady.md
cp "$WORK/timeline.csv" target/bench/steady-timeline.csv
cat target/bench/steady.md
