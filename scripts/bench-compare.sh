#!/usr/bin/env bash
# Before/after benchmark of a change, both builds in the same run (docs/performance.md):
# the small-query path (gRPC Query and Flight DoGet, benches/loadgen) and the 1,000,000-row
# read into Polars (benches/python/read_polars.py, tool db_pool_rs), against two daemons
# on the same machine, the same PostgreSQL and the same tables, alternating by repetition
# so drift of the machine falls on both alike.
#
#   scripts/bench-compare.sh BASE_REV      BASE_REV: the git revision to compare against
#
# Builds BASE_REV in release into target/bench-base (a git worktree under it) and the
# working tree in release, sets up the tables as scripts/bench.sh does, writes
# benches/results/compare-<UTC time>.md. Knobs: COMPARE_CLIENTS ("1 8 64"), COMPARE_REPS
# (3), COMPARE_DURATION (5 s per point), COMPARE_READ_REPS (3), COMPARE_SKIP_BUILD=1.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

BASE_REV="${1:?usage: scripts/bench-compare.sh BASE_REV}"
CLIENTS=${COMPARE_CLIENTS:-"1 8 64"} REPS=${COMPARE_REPS:-3} DURATION=${COMPARE_DURATION:-5}
READ_REPS=${COMPARE_READ_REPS:-3}
DB=dbpool_bench SMALL_ROWS=100000 WIDE_ROWS=1000000
# Plaintext for every tool (the sidecar, tokio-postgres, psycopg, asyncpg, ConnectorX,
# ADBC): PostgreSQL here offers TLS, and libpq-style clients would otherwise take it.
PG_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
OUT="benches/results/compare-$(date -u +%Y-%m-%dT%H%M%SZ).md"
BASE_DIR="$ROOT/target/bench-base"

ensure_postgres
ensure_tools
if [[ "${COMPARE_SKIP_BUILD:-0}" != 1 ]]; then
  log "building $BASE_REV (release) in $BASE_DIR"
  if [[ "$(git -C "$BASE_DIR/src" rev-parse HEAD 2>/dev/null)" != "$(git rev-parse "$BASE_REV^{commit}")" ]]; then
    rm -rf "$BASE_DIR/src"
    git worktree prune
    git worktree add -q --detach "$BASE_DIR/src" "$BASE_REV"
  fi
  (cd "$BASE_DIR/src" && CARGO_TARGET_DIR="$BASE_DIR" cargo build --release -q -p dbpool)
  log "building the working tree (release)"
  cargo build --release -q -p dbpool -p dbpool-loadgen
fi
declare -A BIN=([base]="$BASE_DIR/release/dbpool" [new]="target/release/dbpool")
LOADGEN=target/release/loadgen
for b in "${BIN[@]}" "$LOADGEN"; do [[ -x $b ]] || die "$b is missing"; done
uv sync --quiet --project benches/python
PY=(uv run --quiet --project benches/python python)

bench_tables "$DB" "$SMALL_ROWS" "$WIDE_ROWS"
SMALL="bench_small_$SMALL_ROWS" WIDE="bench_wide_$WIDE_ROWS"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbpool-compare.XXXXXX")"
declare -A PID ADDR
cleanup() {
  local rc=$?
  for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
for side in base new; do
  ADDR[$side]="127.0.0.1:$(free_port)"
  mkdir -p "$WORK/$side"
  cat >"$WORK/$side/dbpool.toml" <<TOML
[server]
listen = "${ADDR[$side]}"
data_dir = "$WORK/$side/data"
default_pool = false

[pools.pg]
url = "$PG_URL"
max_connections = 20
min_connections = 20
TOML
  "${BIN[$side]}" serve --config "$WORK/$side/dbpool.toml" >"$WORK/$side/log" 2>&1 &
  PID[$side]=$!
  wait_for 60 "$side daemon SERVING on ${ADDR[$side]}" grpc_serving "${ADDR[$side]}" dbpool.pool.pg
done

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
log "small queries: {grpc, flight} x clients {$CLIENTS} x $REPS reps x {base, new}, ${DURATION}s each"
for rep in $(seq 1 "$REPS"); do
  # Alternate which side goes first, so a slow moment of the machine hits both.
  order="base new"
  ((rep % 2 == 0)) && order="new base"
  for clients in $CLIENTS; do
    for mode in grpc flight; do
      for side in $order; do
        line="$("$LOADGEN" --mode "$mode" --clients "$clients" --duration "$DURATION" \
          --warmup 1 --pool 20 --rows "$SMALL_ROWS" --table "$SMALL" \
          --endpoint "http://${ADDR[$side]}" --server-pid "${PID[$side]}")"
        printf '{"kind":"small","side":"%s","rep":%s,"run":%s}\n' "$side" "$rep" "$line" >>"$RESULTS"
        printf '  rep %s %-6s %-4s %3s clients: %s\n' "$rep" "$mode" "$side" "$clients" "$line" >&2
      done
    done
  done
done

log "read $WIDE into Polars with db_pool_rs, $READ_REPS reps per side"
for rep in $(seq 1 "$READ_REPS"); do
  for side in base new; do
    line="$("${PY[@]}" benches/python/read_polars.py --endpoint "grpc://${ADDR[$side]}" \
      --pg-url "$PG_URL" --table "$WIDE" --reps 1 --tools db_pool_rs)"
    printf '{"kind":"read","side":"%s","rep":%s,"run":%s}\n' "$side" "$rep" "$line" >>"$RESULTS"
    log "  rep $rep $side: $(printf '%s' "$line" | head -c 300)"
  done
done

mkdir -p "$(dirname "$OUT")"
"${PY[@]}" - "$RESULTS" "$BASE_REV" "$(git rev-parse --short HEAD)" >"$OUT" <<'PY'
"""Medians per (mode, clients, side) and the new/base ratio, as a Markdown table."""
import json, statistics, sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1])]
small = defaultdict(list)
p99 = defaultdict(list)
for r in rows:
    if r["kind"] == "small":
        k = (r["run"]["mode"], r["run"]["clients"], r["side"])
        small[k].append(r["run"]["qps"])
        p99[k].append(r["run"].get("p99_ms", float("nan")))
print(f"# Before/after: base `{sys.argv[2]}` vs new `{sys.argv[3]}`\n")
print("| mode | clients | base QPS | new QPS | new/base | base p99 ms | new p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for mode, clients in sorted({(m, c) for m, c, _ in small}):
    b = statistics.median(small[(mode, clients, "base")])
    n = statistics.median(small[(mode, clients, "new")])
    bp = statistics.median(p99[(mode, clients, "base")])
    np_ = statistics.median(p99[(mode, clients, "new")])
    print(f"| {mode} | {clients} | {b:,.0f} | {n:,.0f} | {n / b:.3f} | {bp:.2f} | {np_:.2f} |")
reads = defaultdict(list)
for r in rows:
    if r["kind"] == "read":
        reads[r["side"]].append(r["run"]["db_pool_rs"])
sec = {s: statistics.median(x["seconds"] for x in reads[s]) for s in ("base", "new")}
rss = {s: statistics.median(x["rss_peak_mb"] for x in reads[s]) for s in ("base", "new")}
print("\n| 1M x 10 read into Polars (db_pool_rs) | base | new | new/base |")
print("| --- | ---: | ---: | ---: |")
print(f"| median seconds | {sec['base']:.3f} | {sec['new']:.3f} | {sec['new'] / sec['base']:.3f} |")
print(f"| client peak RSS MB | {rss['base']:.0f} | {rss['new']:.0f} | {rss['new'] / rss['base']:.3f} |")
PY
log "results: $OUT"
cat "$OUT" >&2
