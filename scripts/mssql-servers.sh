#!/usr/bin/env bash
# Two TDS test servers for the MSSQL backend's tests (no real SQL Server runs here):
#   iridium   iridium_server 0.1.13 (crates.io): a T-SQL engine with tables, writes and
#             transactions; plaintext TDS only.
#   bridge    pysqlbridge 2.1.3 (PyPI): read-only CSV tables, TLS inside TDS, SQL logins.
# Each listens on 127.0.0.1 on a free port; state lives in $DBPOOL_MSSQL_STATE (default
# /tmp/dbpool-mssql), the installed servers in $DBPOOL_MSSQL_TOOLS (default
# ~/.cache/dbpool/mssql; iridium takes ~7 minutes to build the first time).
#
#   eval "$(scripts/mssql-servers.sh start)"   # prints the export lines on stdout
#   scripts/mssql-servers.sh env                # prints them again for running servers
#   scripts/mssql-servers.sh stop               # kills both by PID, removes the state
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="${DBPOOL_MSSQL_STATE:-/tmp/dbpool-mssql}"
TOOLS="${DBPOOL_MSSQL_TOOLS:-$HOME/.cache/dbpool/mssql}"
IRIDIUM_VERSION=0.1.13
BRIDGE_VERSION=2.1.3
IRIDIUM_BIN="$TOOLS/iridium-$IRIDIUM_VERSION/bin/iridium-server"
BRIDGE_BIN="$TOOLS/bridge-$BRIDGE_VERSION/bin/pysqlbridge"
# Test-only credentials; the `;` and `@` exercise URL decoding.
IRIDIUM_USER=dbpool
IRIDIUM_PASSWORD='Pw;d@1'
IRIDIUM_PASSWORD_URL='Pw%3Bd%401'
BRIDGE_USER=reader
BRIDGE_PASSWORD=reader-Pw1

ensure_iridium() {
  [[ -x "$IRIDIUM_BIN" ]] && return 0
  log "building iridium_server $IRIDIUM_VERSION into $TOOLS (first time only)"
  # Its own target dir: its rustls (aws-lc) never meets the workspace's feature set.
  cargo install --quiet --locked iridium_server --version "$IRIDIUM_VERSION" \
    --bin iridium-server --root "$TOOLS/iridium-$IRIDIUM_VERSION" \
    --target-dir "$TOOLS/iridium-target" >&2 || die "cargo install iridium_server failed"
  rm -rf "$TOOLS/iridium-target"
}

ensure_bridge() {
  [[ -x "$BRIDGE_BIN" ]] && return 0
  command -v uv >/dev/null || die "uv not found (scripts/lib.sh ensure_tools installs it)"
  log "installing pysqlbridge $BRIDGE_VERSION into $TOOLS"
  uv venv -q "$TOOLS/bridge-$BRIDGE_VERSION" >&2
  VIRTUAL_ENV="$TOOLS/bridge-$BRIDGE_VERSION" uv pip install -q "pysqlbridge==$BRIDGE_VERSION" >&2 ||
    die "installing pysqlbridge failed"
}

tcp_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# write_bridge_data DIR: the CSV table and config the bridge serves.
write_bridge_data() {
  local dir=$1
  cat >"$dir/people.csv" <<'CSV'
id,name,score,retired
1,Ada Lovelace,99.5,true
2,Grace Hopper,87.25,false
3,Edsger Dijkstra,,true
CSV
  cat >"$dir/bridge.json" <<JSON
{ "logins": [ { "user": "$BRIDGE_USER", "password": "$BRIDGE_PASSWORD" } ],
  "tables": [ { "name": "people", "csv": "people.csv" } ] }
JSON
}

# start_one NAME CMD...: runs CMD (@PORT@ in it becomes a free port) and records the
# port and PID.
start_one() {
  local name=$1 dir="$STATE/$1" pid port a
  local -a cmd=()
  shift
  if [[ -f "$dir/port" ]] && tcp_up "$(cat "$dir/port")"; then
    return 0
  fi
  stop_one "$name"
  mkdir -p "$dir"
  port="$(free_port)"
  [[ "$name" == bridge ]] && write_bridge_data "$dir"
  for a in "$@"; do cmd+=("${a//@PORT@/$port}"); done
  log "starting $name on 127.0.0.1:$port"
  # setsid + no inherited stdout: `eval "$(… start)"` must not wait for the server.
  (
    cd "$dir"
    setsid "${cmd[@]}" </dev/null >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
  )
  echo "$port" >"$dir/port"
  pid="$(cat "$dir/pid")"
  local deadline=$((SECONDS + 60))
  until tcp_up "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$dir/server.log" >&2 || true
      die "$name exited during startup; log above"
    fi
    ((SECONDS < deadline)) || die "$name did not listen within 60s"
    sleep 0.2
  done
}

# stop_one NAME: kills the server by its recorded PID and removes its directory.
stop_one() {
  local dir="$STATE/$1" pid
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/pid" ]]; then
    pid="$(cat "$dir/pid")"
    # Only ours: after a reboot the recorded PID may belong to anything.
    if kill -0 "$pid" 2>/dev/null && grep -qa -e iridium-server -e pysqlbridge "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
}

print_env() {
  local iridium bridge
  iridium="$(cat "$STATE/iridium/port" 2>/dev/null)" || die "no running test servers: run '$0 start'"
  bridge="$(cat "$STATE/bridge/port" 2>/dev/null)" || die "no running test servers: run '$0 start'"
  echo "export DBPOOL_TEST_IRIDIUM_BIN='$IRIDIUM_BIN'"
  echo "export DBPOOL_TEST_IRIDIUM_URL='mssql://$IRIDIUM_USER:$IRIDIUM_PASSWORD_URL@127.0.0.1:$iridium/dbpool_test?encrypt=not_supported'"
  echo "export DBPOOL_TEST_BRIDGE_URL='mssql://$BRIDGE_USER:$BRIDGE_PASSWORD@127.0.0.1:$bridge/?encrypt=required&trust_server_certificate=true'"
}

case "${1:-}" in
  start)
    ensure_iridium
    ensure_bridge
    start_one iridium "$IRIDIUM_BIN" --host 127.0.0.1 --port @PORT@ --user "$IRIDIUM_USER" \
      --password "$IRIDIUM_PASSWORD" --database dbpool_test --no-tls --memory
    start_one bridge "$BRIDGE_BIN" --config bridge.json --host 127.0.0.1 --port @PORT@
    print_env
    ;;
  env) print_env ;;
  stop)
    stop_one iridium
    stop_one bridge
    ;;
  *) die "usage: $0 start|env|stop" ;;
esac
