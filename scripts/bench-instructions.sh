#!/usr/bin/env bash
# Instructions per small query of two daemon builds, counted by callgrind: the measure
# of the per-call path that does not move with the machine's load (docs/performance.md).
#
#   scripts/bench-instructions.sh [BASE_BIN [NEW_BIN]]
#
# Defaults: target/bench-base/release/dbpool (scripts/bench-compare.sh builds it) and
# target/release/dbpool. For each build and mode (gRPC Query, Flight DoGet): the daemon
# runs under `valgrind --tool=callgrind`, 4 clients warm it up, the counters are zeroed,
# 4 clients run for INSTR_SECONDS (8) and the counters are dumped; instructions / queries
# is printed, then the functions whose own instructions per query moved most.
#
# INSTR_TOKEN=new gives the new side's daemon a tenant and the load generator its token
# on every call (issue 18: the cost of authentication, e.g. with the same binary twice:
# `INSTR_TOKEN=new scripts/bench-instructions.sh target/release/dbpool target/release/dbpool`).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

BASE_BIN="${1:-target/bench-base/release/dbpool}" NEW_BIN="${2:-target/release/dbpool}"
SECONDS_PER_RUN=${INSTR_SECONDS:-8} TOP=${INSTR_TOP:-15}
LOADGEN=target/release/loadgen DB=dbpool_bench
for b in "$BASE_BIN" "$NEW_BIN" "$LOADGEN"; do [[ -x $b ]] || die "$b is missing"; done
command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"
ensure_postgres
ensure_tools
bench_tables "$DB" 100000 1000000

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbpool-instr.XXXXXX")"
VPID=""
cleanup() {
  [[ -n $VPID ]] && kill -TERM "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# profile SIDE BIN MODE: writes $WORK/SIDE.MODE.out (callgrind) and .load (loadgen JSON).
profile() {
  local side=$1 bin=$2 mode=$3 addr out="$WORK/$1.$3"
  addr="127.0.0.1:$(free_port)"
  cat >"$WORK/$side.toml" <<TOML
[server]
listen = "$addr"
data_dir = "$WORK/$side-data"
default_pool = false

[pools.pg]
url = "postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
max_connections = 20
min_connections = 20
TOML
  local auth=()
  if [[ ${INSTR_TOKEN:-} == "$side" ]]; then
    local token
    token="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    cat >>"$WORK/$side.toml" <<TOML

[tenants.bench]
token_sha256 = ["$(printf %s "$token" | sha256sum | cut -d' ' -f1)"]
pools = { pg = "read" }
TOML
    auth=(--token "$token")
  fi
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve --config "$WORK/$side.toml" \
    >"$WORK/$side.log" 2>&1 &
  VPID=$!
  wait_for 180 "$side daemon under callgrind" grpc_serving "$addr" dbpool.pool.pg
  local lg=("$LOADGEN" --mode "$mode" --endpoint "http://$addr" --clients 4 --table bench_small_100000 "${auth[@]}")
  "${lg[@]}" --duration 2 --warmup 1 >/dev/null
  callgrind_control -z "$VPID" >/dev/null
  "${lg[@]}" --duration "$SECONDS_PER_RUN" --warmup 0 >"$out.load"
  callgrind_control -d "$VPID" >/dev/null
  kill -TERM "$VPID"
  wait "$VPID" || true
  VPID=""
}

for mode in grpc flight; do
  for side in base new; do
    bin=$BASE_BIN
    [[ $side == new ]] && bin=$NEW_BIN
    log "$mode: $side ($bin) under callgrind, ${SECONDS_PER_RUN}s"
    profile "$side" "$bin" "$mode"
  done
  python3 benches/python/instructions.py "$WORK/base.$mode" "$WORK/new.$mode" "$mode" "$TOP"
done
