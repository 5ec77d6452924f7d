#!/usr/bin/env bash
# The test command: services (PostgreSQL, Redis, the InfluxDB and MSSQL test servers),
# one dev build, the example config, the deploy files, fmt, clippy, the Rust tests, the
# Python client's tests against target/debug/dbpool, a smoke run of the benchmark
# harness, and the demo as a smoke test.
# Prints each stage's result and time at the end; exits non-zero if any failed. The
# services and build stages stop the run when they fail (everything else needs them);
# the later stages all run so one report shows every failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

NAMES=()
RESULTS=()
TIMES=()
FAILED=0
LAST_RC=0

summary() {
  local i
  printf '\n==> test.sh summary\n'
  for i in "${!NAMES[@]}"; do
    printf '  %-13s %-4s %7ss\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
  done
  if ((FAILED)); then
    printf '==> test.sh: FAILED (%d stage(s))\n' "$FAILED"
  else
    printf '==> test.sh: all %d stages ok\n' "${#NAMES[@]}"
  fi
}

# stage NAME CMD...: runs CMD in a subshell with errexit on and records its result and
# time in LAST_RC, RESULTS and TIMES. Always returns 0: calling it as `stage … || x`
# or `if stage …` would switch errexit off inside CMD (bash ignores -e in functions
# and subshells run from a condition).
stage() {
  local name=$1 start rc
  shift
  printf '\n==> [%s] %s\n' "$name" "$*"
  start=$EPOCHREALTIME
  set +e
  (
    set -euo pipefail
    "$@"
  )
  rc=$?
  set -e
  NAMES+=("$name")
  TIMES+=("$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')")
  if ((rc == 0)); then
    RESULTS+=(ok)
  else
    RESULTS+=(FAIL)
    FAILED=$((FAILED + 1))
    printf '==> [%s] failed with status %d\n' "$name" "$rc" >&2
  fi
  LAST_RC=$rc
}

# fatal_stage NAME CMD...: a stage the rest depends on; stops the run when it fails.
fatal_stage() {
  stage "$@"
  ((LAST_RC == 0)) && return 0
  summary
  exit 1
}

services() {
  ensure_services
  ensure_tools
}

rust_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    cargo test --workspace --doc
  else
    cargo test --workspace
  fi
}

python_tests() {
  [[ -f clients/python/pyproject.toml ]] ||
    die "clients/python/pyproject.toml is missing: the Python client is part of the suite"
  cd clients/python
  uv sync --frozen || uv sync
  # pytest exits 5 when it collected no test: that is a failure here too.
  DBPOOL_BIN="$ROOT/target/debug/dbpool" uv run pytest -q
}

fatal_stage services services
# Throwaway test servers: scripts/<name>.sh start|env|stop, whose `start` prints the
# `export VAR=…` lines that point the tests at them. The exports are sourced here, in
# this shell, so every later stage sees them. Servers this run started are stopped when
# it ends; ones already running are reused and left up.
TEST_SERVERS=(influxdb mssql-servers)
SERVER_ENV="$(mktemp -d)"
STARTED_SERVERS=()
stop_test_servers() {
  local name
  for name in ${STARTED_SERVERS[@]+"${STARTED_SERVERS[@]}"}; do
    "scripts/$name.sh" stop >/dev/null 2>&1 || true
  done
  rm -rf "$SERVER_ENV"
}
trap stop_test_servers EXIT
start_test_server() { "scripts/$1.sh" start >"$SERVER_ENV/$1"; }
for name in "${TEST_SERVERS[@]}"; do
  [[ -x "scripts/$name.sh" ]] || continue
  "scripts/$name.sh" env >/dev/null 2>&1 || STARTED_SERVERS+=("$name")
  stage "$name" start_test_server "$name"
  # shellcheck disable=SC1090
  ((LAST_RC == 0)) && source "$SERVER_ENV/$name"
done
fatal_stage build cargo build --workspace --bins --tests
# The example config names its password and its tenant's token by environment variable;
# any value will do.
stage check-config env APP_DB_PASSWORD=example DBPOOL_TOKEN=example \
  target/debug/dbpool check-config deploy/dbpool.example.toml
# The container image and Kubernetes manifests, checked offline against this binary.
stage deploy scripts/check-deploy.sh
stage fmt cargo fmt --all -- --check
stage clippy cargo clippy --workspace --all-targets -- -D warnings
stage rust-tests rust_tests
stage python-tests python_tests
# The benchmark harness on tiny data with the debug build, so it does not rot (the
# numbers of this run mean nothing; real runs are by hand, docs/performance.md).
stage bench-smoke env BENCH_SKIP_BUILD=1 BENCH_PROFILE=debug scripts/bench.sh --quick
# The demo runs the binary the build stage made (see DBPOOL_DEMO_SKIP_BUILD in demo.sh).
stage demo env DBPOOL_DEMO_SKIP_BUILD=1 scripts/demo.sh

summary
((FAILED == 0))
