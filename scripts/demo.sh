#!/usr/bin/env bash
# The demo: builds dbpool (dev profile), makes a random token, starts the daemon on a
# free port with a throwaway data directory and a config holding one tenant, `demo`
# (the token's SHA-256, admin), waits for grpc health SERVING, checks that a call without
# the token is refused, runs the Python example with DBPOOL_TOKEN against the embedded
# SQLite pool `default`, then stops the daemon with SIGTERM. The daemon never outlives
# this script; the token lives only in its environment and the example's.
#
# DBPOOL_DEMO_EXAMPLE overrides the example script (default
# clients/python/examples/basic_usage.py). DBPOOL_DEMO_SKIP_BUILD=1 uses the
# target/debug/dbpool already there: test.sh sets it because its own build (with the
# test targets) resolves tokio with dev-dependency features, and a second
# `cargo build -p dbpool` would rebuild tokio, tonic, arrow-flight, … without them.
# The binary is $CARGO_TARGET_DIR/debug/dbpool (default target/debug/dbpool).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

EXAMPLE="${DBPOOL_DEMO_EXAMPLE:-clients/python/examples/basic_usage.py}"
STARTUP_SECONDS=60
BIN="${CARGO_TARGET_DIR:-target}/debug/dbpool"

ensure_tools
[[ -f "$EXAMPLE" ]] || die "example $EXAMPLE not found"

if [[ "${DBPOOL_DEMO_SKIP_BUILD:-0}" == 1 ]]; then
  [[ -x "$BIN" ]] || die "$BIN not built (DBPOOL_DEMO_SKIP_BUILD=1)"
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

# A fresh token; the config gets only its SHA-256 (docs/security.md, "Identity").
# Python rather than openssl/sha256sum: it is here anyway (free_port, the example).
{ read -r TOKEN && read -r TOKEN_SHA256; } < <(python3 -c 'import hashlib, secrets
t = secrets.token_hex(32)
print(t)
print(hashlib.sha256(t.encode()).hexdigest())')
[[ ${#TOKEN_SHA256} == 64 ]] || die "could not make a token"
CONFIG="$WORK/dbpool.toml"
printf '%s\n' "# Written by scripts/demo.sh: the embedded SQLite pool default and one tenant." \
  "[tenants.demo]" "token_sha256 = [\"$TOKEN_SHA256\"]" "admin = true" >"$CONFIG"

PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
log "starting $BIN serve --config $CONFIG --listen $ADDR --data-dir $WORK/data (tenant demo)"
"$BIN" serve --config "$CONFIG" --listen "$ADDR" --data-dir "$WORK/data" >"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!

daemon_ready() {
  kill -0 "$DAEMON_PID" 2>/dev/null || die "dbpool exited during startup"
  grpc_serving "$ADDR" && grpc_serving "$ADDR" dbpool.pool.default
}
wait_for "$STARTUP_SECONDS" "dbpool health SERVING on $ADDR" daemon_ready

# Health needs no token (above); everything else does.
out="$(grpcurl -plaintext -max-time 5 -d '{}' "$ADDR" dbpool.v1.PoolService/ListPools 2>&1)" || true
[[ "$out" == *Unauthenticated* ]] || die "a call without the token was not refused: $out"
log "without the token: Unauthenticated"

log "running $EXAMPLE against grpc://$ADDR with DBPOOL_TOKEN (tenant demo)"
DBPOOL_ENDPOINT="grpc://$ADDR" DBPOOL_TOKEN="$TOKEN" \
  uv run --quiet --project clients/python python "$EXAMPLE"

log "stopping dbpool (SIGTERM)"
rc=0
stop_daemon || rc=$?
((rc == 0)) || die "dbpool exited with status $rc after SIGTERM"
log "demo ok"
