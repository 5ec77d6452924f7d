#!/usr/bin/env bash
# Two throwaway InfluxDB 1.x servers for the tests: one without auth, one with
# `auth-enabled = true` and an admin user. Each listens on 127.0.0.1 on free ports
# (HTTP and RPC) and keeps its data, meta and WAL in a temporary directory.
#
#   eval "$(scripts/influxdb.sh start)"   # prints the export lines on stdout
#   scripts/influxdb.sh env                # prints them again for running servers
#   scripts/influxdb.sh stop               # kills both by PID, removes the directories
#
# `start` installs Debian's `influxdb` package when `influxd` is missing and is
# idempotent: servers that still answer /ping are reused. State lives in
# $DBPOOL_INFLUX_STATE (default /tmp/dbpool-influxdb).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="${DBPOOL_INFLUX_STATE:-/tmp/dbpool-influxdb}"
ADMIN_USER=dbpool_admin
ADMIN_PASSWORD=dbpool-test-pw

ensure_influxd() {
  command -v influxd >/dev/null && return 0
  log "installing Debian's influxdb package"
  apt-cache policy influxdb 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null ||
    die "apt-get install influxdb failed"
  command -v influxd >/dev/null || die "influxd is still missing after installing influxdb"
}

ping_ok() { curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$1/ping" 2>/dev/null; }

# write_config DIR HTTP_PORT RPC_PORT AUTH: the config of one instance.
write_config() {
  local dir=$1 http=$2 rpc=$3 auth=$4
  cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"

[meta]
  dir = "$dir/meta"

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$http"
  auth-enabled = $auth
  log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
EOF
}

# start_one NAME AUTH: starts an instance and records its port and PID under $STATE/NAME.
start_one() {
  local name=$1 auth=$2 dir http rpc pid
  dir="$STATE/$name"
  if [[ -f "$dir/port" ]] && ping_ok "$(cat "$dir/port")"; then
    return 0
  fi
  stop_one "$name"
  mkdir -p "$dir"
  http="$(free_port)"
  rpc="$(free_port)"
  while [[ "$rpc" == "$http" ]]; do rpc="$(free_port)"; done
  write_config "$dir" "$http" "$rpc" "$auth"
  log "starting influxd ($name) on 127.0.0.1:$http"
  # setsid + no inherited stdout: `eval "$(… start)"` must not wait for the daemon.
  setsid influxd run -config "$dir/influxdb.conf" </dev/null >"$dir/influxd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  echo "$http" >"$dir/port"
  local deadline=$((SECONDS + 60))
  until ping_ok "$http"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$dir/influxd.log" >&2 || true
      die "influxd ($name) exited during startup; log above"
    fi
    ((SECONDS < deadline)) || die "influxd ($name) did not answer /ping within 60s"
    sleep 0.2
  done
  if [[ "$auth" == true ]]; then
    # The first user may be created without credentials, and must be an admin.
    curl -fsS --max-time 10 -XPOST "http://127.0.0.1:$http/query" \
      --data-urlencode "q=CREATE USER $ADMIN_USER WITH PASSWORD '$ADMIN_PASSWORD' WITH ALL PRIVILEGES" \
      >/dev/null || die "creating the admin user of influxd ($name) failed"
  fi
}

# stop_one NAME: kills the instance by its recorded PID and removes its directory.
stop_one() {
  local dir="$STATE/$1" pid
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/pid" ]]; then
    pid="$(cat "$dir/pid")"
    # Only our influxd: after a reboot the recorded PID may belong to anything.
    if kill -0 "$pid" 2>/dev/null && grep -q "$dir/influxdb.conf" "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
}

print_env() {
  local plain auth
  plain="$(cat "$STATE/plain/port" 2>/dev/null)" || die "no running InfluxDB: run '$0 start'"
  auth="$(cat "$STATE/auth/port" 2>/dev/null)" || die "no running InfluxDB: run '$0 start'"
  echo "export DBPOOL_TEST_INFLUX_URL=influxdb://127.0.0.1:$plain"
  echo "export DBPOOL_TEST_INFLUX_AUTH_URL=influxdb://$ADMIN_USER:$ADMIN_PASSWORD@127.0.0.1:$auth"
}

case "${1:-}" in
  start)
    ensure_influxd
    command -v curl >/dev/null || die "curl is required"
    mkdir -p "$STATE"
    start_one plain false
    start_one auth true
    print_env
    ;;
  env) print_env ;;
  stop)
    stop_one plain
    stop_one auth
    rmdir "$STATE" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|env|stop" >&2
    exit 2
    ;;
esac
