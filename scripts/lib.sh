# Shared shell helpers for the local stack (scripts/stack.sh) and the test run (scripts/test.sh).
# Sourced, not executed.

TOOLS_DIR="${RECEIPTS_TOOLS_DIR:-$HOME/.cache/receipts-tools}"
TANSU_BIN="$TOOLS_DIR/tansu/bin/tansu"
# The OpenAPI validators the tests use (PyPI), installed beside the tools rather than into the system Python.
OPENAPI_PYTHONPATH="$TOOLS_DIR/openapi-validators"
# playwright-core (npm), pinned, which drives Debian's Chromium in the console's browser test.
PLAYWRIGHT_VERSION="1.64.1"
PLAYWRIGHT_DIR="$TOOLS_DIR/playwright-$PLAYWRIGHT_VERSION"
# schemathesis, pinned, in a directory of its own (its dependencies differ from the validators').
SCHEMATHESIS_VERSION="4.32.0"
SCHEMATHESIS_PYTHONPATH="$TOOLS_DIR/schemathesis-$SCHEMATHESIS_VERSION"

log() { printf '==> %s\n' "$*" >&2; }

pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && echo "$dir"
}

# Installs PostgreSQL, Redis and the tansu broker when they are missing.
ensure_dependencies() {
  local missing=""
  [ -n "$(pg_bin_dir)" ] || missing="$missing postgresql"
  command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
  [ -f /usr/include/postgresql/libpq-fe.h ] || missing="$missing libpq-dev"
  command -v curl >/dev/null 2>&1 || missing="$missing curl"
  python3 -m pip --version >/dev/null 2>&1 || missing="$missing python3-pip"
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  # The text of the benchmarks' charts (system-tests/src/chart.rs).
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
  command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
  if [ -n "$missing" ]; then
    log "installing Debian packages:$missing"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
  if ! PYTHONPATH="$OPENAPI_PYTHONPATH" python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
    log "installing the OpenAPI validators from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check --target "$OPENAPI_PYTHONPATH" \
      openapi-spec-validator==0.9.0 openapi-schema-validator==0.9.0
  fi
  if ! PYTHONPATH="$SCHEMATHESIS_PYTHONPATH" python3 -c 'import schemathesis' >/dev/null 2>&1; then
    log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check --target "$SCHEMATHESIS_PYTHONPATH" \
      "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  if [ ! -f "$PLAYWRIGHT_DIR/node_modules/playwright-core/index.mjs" ]; then
    log "installing playwright-core $PLAYWRIGHT_VERSION from the npm registry"
    mkdir -p "$PLAYWRIGHT_DIR"
    (cd "$PLAYWRIGHT_DIR" && npm install --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null)
  fi
  if [ ! -x "$TANSU_BIN" ]; then
    log "installing the tansu Kafka broker from crates.io (about 10 minutes, once)"
    cargo install --locked tansu --features dynostore,postgres --root "$TOOLS_DIR/tansu"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# PostgreSQL refuses to run as root: run its tools as the postgres user then.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Server settings that log what a benchmark's slow seconds are set beside: autovacuum's passes, checkpoints
# and statements over a second (the intake benchmark's stack and scripts/steady.sh).
PG_ACTIVITY_LOG="-c log_autovacuum_min_duration=0 -c log_checkpoints=on -c log_min_duration_statement=1000"

# start_postgres DATA_DIR PORT: a private cluster (initdb on first use), trust auth on loopback only;
# PG_OPTIONS adds server settings. A durable cluster (fsync on: the local stack and the benchmarks) may keep
# 8 GB of WAL between checkpoints, so that checkpoints come every `checkpoint_timeout` (5 min), not every
# 20-30 s of sustained intake, and keeps 4 GB of WAL files for reuse after each checkpoint, so that intake
# after a quiet spell does not wait while new ones are created (docs/deployment.md, "PostgreSQL's
# checkpoints").
start_postgres() {
  local data="$1" port="$2" bin checkpoints=""
  [ "${PG_FSYNC:-on}" = on ] && checkpoints="-c max_wal_size=8GB -c min_wal_size=4GB"
  bin=$(pg_bin_dir)
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data"
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg_user "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 >/dev/null
  fi
  as_pg_user "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${PG_FSYNC:-on} $checkpoints ${PG_OPTIONS:-}" start >/dev/null
}

stop_postgres() {
  local data="$1" bin
  bin=$(pg_bin_dir)
  [ -f "$data/postmaster.pid" ] && as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# stop_postgres_now DATA_DIR: stops the cluster at once, breaking every connection mid-transaction.
stop_postgres_now() {
  local data="$1" bin
  bin=$(pg_bin_dir)
  as_pg_user "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
}

# start_redis DIR PORT
start_redis() {
  local dir="$1" port="$2"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" --appendonly yes >/dev/null
}

stop_redis() {
  local dir="$1" pid
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/redis.pid"
  fi
}

# start_tansu DIR PORT: an in-memory Kafka-protocol broker in the background, restarted if it exits.
start_tansu() {
  local dir="$1" port="$2"
  supervise tansu "$dir" "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/
}

stop_pidfile() {
  local file="$1"
  if [ -f "$file" ]; then
    local pid
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
  fi
  # A supervised process: make sure the process it ran is gone too.
  local child="${file%.pid}.child"
  if [ -f "$child" ]; then
    kill -9 "$(cat "$child")" 2>/dev/null || true
    rm -f "$child"
  fi
}

# kill_redis_and_its_data DIR: Redis dies without saving, and its files are deleted (a Redis that lost its data).
kill_redis_and_its_data() {
  local dir="$1"
  if [ -f "$dir/redis.pid" ]; then
    kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -f "$dir/redis.pid"
  fi
  rm -rf "$dir"/appendonlydir "$dir"/*.aof "$dir"/dump.rdb
}

# wait_until_ready LOGS URL...: waits up to a minute for each URL to answer with success; fails naming LOGS.
wait_until_ready() {
  local logs="$1" url attempt
  shift
  for url in "$@"; do
    for attempt in $(seq 1 120); do
      curl -fsS "$url" >/dev/null 2>&1 && break
      [ "$attempt" -eq 120 ] && { log "$url is not ready; see $logs"; return 1; }
      sleep 0.5
    done
  done
}

wait_for_port() {
  local port="$1" what="$2"
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$what did not open port $port"
  return 1
}

# supervise NAME DIR COMMAND...: runs COMMAND in the background and starts it again a second after it exits,
# as compose's `restart: unless-stopped` does. DIR/NAME.pid is the supervisor (stop it with stop_pidfile to
# stop both), DIR/NAME.child the running process; output goes to DIR/logs/NAME.log.
supervise() {
  local name="$1" dir="$2"
  shift 2
  mkdir -p "$dir/logs"
  nohup bash -c '
    child=""
    trap "[ -n \"\$child\" ] && kill \$child 2>/dev/null; wait; exit 0" TERM INT
    while true; do
      "$@" & child=$!
      echo "$child" >"'"$dir/$name.child"'"
      wait "$child"
      echo "==> $(date -Is) '"$name"' exited with status $?; starting it again in 1 s" >&2
      sleep 1
    done' supervise "$@" >>"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}
