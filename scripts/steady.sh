#!/usr/bin/env bash
# The whole pipeline at a fixed rate on a fresh stack, for comparing two builds or settings one change at a
# time (docs/performance.md, "Why intake's latency has episodes"): a fresh PostgreSQL (fsync on), Redis and
# in-memory broker, the release producer, consumer and worker with their defaults (or whatever the
# environment sets), 20 s of flat-out intake to warm up, then `loadgen --rate BENCH_STEADY_RATE` (default
# 3200) for BENCH_STEADY_SECONDS (default 120). Writes target/bench/steady.md: latency, write-ahead log per
# accepted receipt, autovacuum's passes and the statements that took over a second.
# Run it through `scripts/bench.sh steady`, which builds the release binaries first; BENCH_BIN_DIR runs another
# build's producer, consumer and worker under this checkout's load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_dependencies
RATE="${BENCH_STEADY_RATE:-3200}"
SECONDS_AT_RATE="${BENCH_STEADY_SECONDS:-120}"
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

PG_OPTIONS="-c log_autovacuum_min_duration=0 -c log_min_duration_statement=1000" \
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
log "warming up: 20 s flat out"
loadgen --seconds 20 >"$WORK/warmup.txt"
wal_before=$(sql "SELECT pg_current_wal_lsn()")
accepted_before=$(sql "SELECT count(*) FROM accepted_receipts")
log_from=$(wc -l <"$WORK/postgres/server.log")
log "the whole pipeline at $RATE receipts/s for $SECONDS_AT_RATE s"
loadgen --rate "$RATE" --seconds "$SECONDS_AT_RATE" >"$WORK/steady.txt"
accepted=$(($(sql "SELECT count(*) FROM accepted_receipts") - accepted_before))
wal=$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')::bigint")

mkdir -p target/bench
{
  echo "Command: \`BENCH_STEADY_RATE=$RATE BENCH_STEADY_SECONDS=$SECONDS_AT_RATE scripts/bench.sh steady\`" \
    "(binaries: $BIN)."
  echo
  echo "| what | measured |"
  echo "|---|---|"
  echo "| warm-up, flat out for 20 s | $(grep -m1 '^accepted:' "$WORK/warmup.txt") |"
  echo "| at $RATE receipts/s for $SECONDS_AT_RATE s | $(grep -m1 '^latency' "$WORK/steady.txt"); $(grep -m1 '^answers' "$WORK/steady.txt") |"
  echo "| write-ahead log per accepted receipt, at the rate | $((wal / (accepted > 0 ? accepted : 1))) B ($accepted receipts) |"
  echo
  echo "Autovacuum's passes from the start, seconds each (PostgreSQL's log):"
  echo
  awk '/automatic vacuum of table/ { match($0, /"[^"]*"/); table = substr($0, RSTART + 1, RLENGTH - 2); sub(/^[^.]*[.][^.]*[.]/, "", table) }
       /system usage:/ && table != "" { match($0, /elapsed: [0-9.]+/); times[table] = times[table] " " substr($0, RSTART + 9, RLENGTH - 9); table = "" }
       END { for (t in times) print "- `" t "`:" times[t] }' "$WORK/postgres/server.log" | sort
  echo
  echo "Statements that took over a second at the rate, by the table they write (or read):"
  echo
  tail -n +"$log_from" "$WORK/postgres/server.log" | awk '
    function flush(  what) {
      if (ms == "") return
      what = "a query"
      if (match(text, /(INSERT INTO|UPDATE|DELETE FROM) [a-z_]+/)) what = substr(text, RSTART, RLENGTH)
      else if (match(text, /FROM [a-z_]+/)) what = substr(text, RSTART, RLENGTH)
      print "- " ms " ms: `" what "`"
      ms = ""
    }
    /^[0-9][0-9][0-9][0-9]-/ {
      flush()
      if (match($0, /duration: [0-9.]+ ms/)) { ms = substr($0, RSTART + 10, RLENGTH - 13); text = $0 }
      next
    }
    { if (ms != "") text = text " " $0 }
    END { flush() }'
} >target/bench/steady.md
cat target/bench/steady.md
