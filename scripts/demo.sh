#!/usr/bin/env bash
# The demo: builds dbpool (dev profile), starts it on a free port with a throwaway data
# directory, waits for grpc health SERVING, runs the Python example against the embedded
# SQLite pool `default`, then stops the daemon with SIGTERM. The daemon never outlives
# this script.
#
# DBPOOL_DEMO_EXAMPLE overrides the example script (default
# clients/python/examples/basic_usage.py). DBPOOL_DEMO_SKIP_BUILD=1 uses the
# target/debug/dbpool already there: test.sh sets it because its own build (with the
# test targets) resolves tokio with dev-dependency features, and a second
# `cargo build -p dbpool` would rebuild tokio, tonic, arrow-flight, … without them.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

EXAMPLE="${DBPOOL_DEMO_EXAMPLE:-clients/python/examples/basic_usage.py}"
STARTUP_SECONDS=60

ensure_tools
[[ -f "$EXAMPLE" ]] || die "example $EXAMPLE not found"

if [[ "${DBPOOL_DEMO_SKIP_BUILD:-0}" == 1 ]]; then
  [[ -x target/debug/dbpool ]] || die "target/debug/dbpool not built (DBPOOL_DEMO_SKIP_BUILD=1)"
else
  log "cargo build -p dbpool"
  cargo build -p dbpool
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbpool-demo.XXXXXX")"
DAEMON_PID=""
DAEMON_LOG="$WORK/dbpool.log"

stop_daemon() {
  [[ -n "$DAEMON_PID" ]] || return 0
  local pid=$DAEMON_PID rc=0
  DAEMON_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  return "$rc"
}

cleanup() {
  local rc=$?
  stop_daemon || true
  if ((rc != 0)) && [[ -s "$DAEMON_LOG" ]]; then
    printf -- '--- last lines of the dbpool log (%s) ---\n' "$DAEMON_LOG" >&2
    tail -n 40 "$DAEMON_LOG" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
log "starting target/debug/dbpool serve --listen $ADDR --data-dir $WORK/data"
target/debug/dbpool serve --listen "$ADDR" --data-dir "$WORK/data" >"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!

daemon_ready() {
  kill -0 "$DAEMON_PID" 2>/dev/null || die "dbpool exited during startup"
  grpc_serving "$ADDR" && grpc_serving "$ADDR" dbpool.pool.default
}
wait_for "$STARTUP_SECONDS" "dbpool health SERVING on $ADDR" daemon_ready

log "running $EXAMPLE against grpc://$ADDR"
DBPOOL_ENDPOINT="grpc://$ADDR" uv run --quiet --project clients/python python "$EXAMPLE"

log "stopping dbpool (SIGTERM)"
rc=0
stop_daemon || rc=$?
((rc == 0)) || die "dbpool exited with status $rc after SIGTERM"
log "demo ok"
