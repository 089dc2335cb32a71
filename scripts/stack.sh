#!/usr/bin/env bash
# The local stack without Docker: `scripts/stack.sh up` starts PostgreSQL, Redis, the tansu broker, the
# producer, the consumer and a worker in the background and returns when both APIs answer /ready;
# `scripts/stack.sh down` stops all of it. Data lives in .stack/ and survives down/up.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STATE="$PWD/.stack"
PG_PORT="${STACK_PG_PORT:-55432}"
REDIS_PORT="${STACK_REDIS_PORT:-56379}"
KAFKA_PORT="${STACK_KAFKA_PORT:-59092}"
PRODUCER_ADDR="${PRODUCER_ADDR:-127.0.0.1:8000}"
CONSUMER_ADDR="${CONSUMER_ADDR:-127.0.0.1:8001}"
WORKERS="${WORKERS:-1}"

up() {
  ensure_dependencies
  log "building the services"
  cargo build --quiet --bins
  mkdir -p "$STATE/logs"
  [ -f "$STATE/admin_token" ] || { echo "rcpt_$(python3 -c 'import secrets; print(secrets.token_hex(32))')" >"$STATE/admin_token"; chmod 600 "$STATE/admin_token"; }

  log "starting PostgreSQL on $PG_PORT, Redis on $REDIS_PORT, tansu on $KAFKA_PORT"
  start_postgres "$STATE/postgres" "$PG_PORT"
  as_pg_user psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='receipts'" | grep -q 1 \
    || as_pg_user psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE receipts" >/dev/null
  start_redis "$STATE/redis" "$REDIS_PORT"
  [ -f "$STATE/tansu.pid" ] && kill -0 "$(cat "$STATE/tansu.pid")" 2>/dev/null || start_tansu "$STATE" "$KAFKA_PORT"
  wait_for_port "$KAFKA_PORT" tansu

  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/receipts"
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
  export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
  export BOOTSTRAP_ADMIN_TOKEN
  BOOTSTRAP_ADMIN_TOKEN=$(cat "$STATE/admin_token")
  export PRODUCER_ADDR CONSUMER_ADDR RUST_LOG="${RUST_LOG:-info}"
  # As the image sets it (docs/configuration.md, "The allocator").
  export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"

  target/debug/producer migrate

  # Each process is restarted when it exits, as compose's restart policy does. Receipts that a broker lost
  # (the stack's broker keeps messages in memory) are published again by the producer's reconcile.
  log "starting producer, consumer and $WORKERS worker(s)"
  supervise producer "$STATE" target/debug/producer
  supervise consumer "$STATE" target/debug/consumer
  for i in $(seq 1 "$WORKERS"); do
    WORKER_NAME="worker-$i" WORKER_METRICS_ADDR="127.0.0.1:$((9100 + i))" supervise "worker-$i" "$STATE" target/debug/worker
  done

  wait_until_ready "$STATE/logs/" "http://$PRODUCER_ADDR/ready" "http://$CONSUMER_ADDR/ready"

  cat >"$STATE/env" <<ENV
PRODUCER_URL=http://$PRODUCER_ADDR
CONSUMER_URL=http://$CONSUMER_ADDR
ADMIN_TOKEN=$BOOTSTRAP_ADMIN_TOKEN
DATABASE_URL=$DATABASE_URL
KAFKA_BROKERS=$KAFKA_BROKERS
REDIS_URL=$REDIS_URL
ENV
  chmod 600 "$STATE/env"
  log "the stack is up (logs in .stack/logs/); these are also in .stack/env:"
  cat "$STATE/env"
}

down() {
  for file in "$STATE"/producer.pid "$STATE"/consumer.pid "$STATE"/worker-*.pid; do
    [ -e "$file" ] && stop_pidfile "$file"
  done
  stop_pidfile "$STATE/tansu.pid"
  stop_redis "$STATE/redis"
  stop_postgres "$STATE/postgres"
  log "the stack is down (data kept in .stack/)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
