#!/usr/bin/env bash
# Benchmarks of the sidecar against the tools users would pick instead (docs/performance.md):
#   1. small queries under concurrency: sidecar gRPC Query / Flight DoGet vs tokio-postgres
#      + bb8 vs PgBouncer (transaction mode), with benches/loadgen;
#   2. a wide table into Polars: db_pool_rs vs ConnectorX vs ADBC vs psycopg, and COPY;
#   3. the daemon's RSS while a large result streams through it;
#   4. bulk insert: db_pool_rs vs ADBC adbc_ingest vs psql COPY FROM;
#   5. small queries from Python: DatabasePool.query vs asyncpg, SyncDatabasePool.query vs
#      polars.read_database over psycopg, query_arrow vs psycopg fetchall.
# Sets everything up (PgBouncer, the dbpool_bench database and tables, the Python env of
# benches/python, a release build, the daemon on a free port), runs it all and writes
# benches/results/<date>.json plus PNG charts; everything it started stops on exit.
#
#   scripts/bench.sh           the real run (about 10 minutes)
#   scripts/bench.sh --quick   a smoke run on tiny data (about 30 s after the build), so
#                              the harness does not rot; results go to target/bench-quick/
#
# Environment: BENCH_UNIX (1: the small queries also over the daemon's Unix socket,
# modes grpc_unix and flight_unix beside loopback TCP; 0 leaves them out),
# BENCH_CLIENTS ("1 8 64 256"), BENCH_REPS (3), BENCH_DURATION (5 s per
# point), BENCH_STREAM_ROWS ("2000000 10000000"), BENCH_OUT (results file),
# BENCH_SKIP_BUILD=1, CARGO_TARGET_DIR (where the binaries are built), BENCH_PROFILE
# (release; scripts/test.sh runs `--quick` on its debug build so the harness does not
# rot: its numbers mean nothing). Real numbers come only from release builds by hand.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

QUICK=0
[[ "${1:-}" == --quick ]] && QUICK=1
if ((QUICK)); then
  SMALL_ROWS=10000 WIDE_ROWS=20000 INS_ROWS=20000
  CLIENTS=${BENCH_CLIENTS:-"1 8"} REPS=${BENCH_REPS:-1} DURATION=${BENCH_DURATION:-1} WARMUP=0.3
  READ_REPS=1 STREAM_ROWS=${BENCH_STREAM_ROWS:-"50000"}
else
  SMALL_ROWS=100000 WIDE_ROWS=1000000 INS_ROWS=1000000
  CLIENTS=${BENCH_CLIENTS:-"1 8 64 256"} REPS=${BENCH_REPS:-3} DURATION=${BENCH_DURATION:-5}
  WARMUP=1 READ_REPS=3 STREAM_ROWS=${BENCH_STREAM_ROWS:-"2000000 10000000"}
fi
DB=dbpool_bench
# Plaintext for every tool (the sidecar, tokio-postgres, psycopg, asyncpg, ConnectorX,
# ADBC): PostgreSQL here offers TLS, and libpq-style clients would otherwise take it.
PG_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
STAMP="$(date -u +%Y-%m-%dT%H%M%SZ)"
# Smoke runs write under target/ (not kept); real runs go to benches/results/.
if ((QUICK)); then
  OUT="${BENCH_OUT:-target/bench-quick/$STAMP.json}"
else
  OUT="${BENCH_OUT:-benches/results/$STAMP.json}"
fi
started=$SECONDS

ensure_postgres
ensure_tools
if ! command -v pgbouncer >/dev/null && [[ ! -x /usr/sbin/pgbouncer ]]; then
  log "apt-get install pgbouncer"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null
fi
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

PROFILE="${BENCH_PROFILE:-release}"
((QUICK)) || [[ $PROFILE == release ]] || die "real runs need BENCH_PROFILE=release"
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  log "cargo build --profile $PROFILE -p dbpool-loadgen -p dbpool"
  cargo build --profile "$([[ $PROFILE == debug ]] && echo dev || echo "$PROFILE")" -q \
    -p dbpool-loadgen -p dbpool
fi
LOADGEN="${CARGO_TARGET_DIR:-target}/$PROFILE/loadgen"
DBPOOL="${CARGO_TARGET_DIR:-target}/$PROFILE/dbpool"
[[ -x $LOADGEN && -x $DBPOOL ]] || die "$LOADGEN or $DBPOOL is missing (BENCH_SKIP_BUILD=1 without a build?)"

log "uv sync (benches/python)"
uv sync --quiet --project benches/python
PY=(uv run --quiet --project benches/python python)

# --- data ------------------------------------------------------------------------------
bench_tables "$DB" "$SMALL_ROWS" "$WIDE_ROWS"
SMALL="bench_small_$SMALL_ROWS"
WIDE="bench_wide_$WIDE_ROWS"

# --- processes -------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbpool-bench.XXXXXX")"
DAEMON_PID="" PGB_PID=""
cleanup() {
  local rc=$?
  for pid in $DAEMON_PID $PGB_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $DAEMON_PID $PGB_PID; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0)); then
    for f in "$WORK/dbpool.log" "$WORK/pgb/pgbouncer.log"; do
      [[ -s "$f" ]] && { printf -- '--- last lines of %s ---\n' "$f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PgBouncer refuses to run as root: it drops to postgres (-u), which must own its files.
PGB_PORT="$(free_port)"
mkdir -p "$WORK/pgb"
printf '"postgres" ""\n' >"$WORK/pgb/userlist.txt"
cat >"$WORK/pgb/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=5432 dbname=$DB user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/pgb/userlist.txt
pool_mode = transaction
server_tls_sslmode = disable
default_pool_size = 20
max_client_conn = 1000
logfile = $WORK/pgb/pgbouncer.log
log_connections = 0
log_disconnections = 0
INI
if [[ $(id -u) == 0 ]]; then
  chmod 755 "$WORK"
  chown -R postgres "$WORK/pgb"
  PGB_USER=(-u postgres)
else
  PGB_USER=()
fi
log "starting pgbouncer (transaction mode) on 127.0.0.1:$PGB_PORT"
"$PGBOUNCER" "${PGB_USER[@]}" "$WORK/pgb/pgbouncer.ini" >/dev/null 2>&1 &
PGB_PID=$!
wait_for 20 "pgbouncer on $PGB_PORT" pg_isready -q -h 127.0.0.1 -p "$PGB_PORT" -d "$DB"

PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
# The same daemon also listens on a Unix socket (server.extra_listen): TCP and the socket
# are measured against the same pools.
SOCK="$WORK/dbpool.sock"
SMALL_MODES="grpc flight grpc_nocache grpc_dirty grpc_always direct direct_fair pgbouncer"
[[ "${BENCH_UNIX:-1}" == 0 ]] || SMALL_MODES+=" grpc_unix flight_unix"
cat >"$WORK/dbpool.toml" <<TOML
[server]
listen = "$ADDR"
extra_listen = ["unix:$SOCK"]
data_dir = "$WORK/data"
default_pool = false

[pools.pg]
url = "$PG_URL"
max_connections = 20
min_connections = 20

# The same pool without the statement cache: every query prepared anew (before/after).
[pools.pg_nocache]
url = "$PG_URL"
max_connections = 20
min_connections = 20
statement_cache_size = 0

# The same pool resetting every connection after every use (reset_sessions, issue 17).
[pools.pg_always]
url = "$PG_URL"
max_connections = 20
min_connections = 20
reset_sessions = "always"
TOML
log "starting $DBPOOL on $ADDR (pool pg: max_connections 20 on $DB)"
"$DBPOOL" serve --config "$WORK/dbpool.toml" >"$WORK/dbpool.log" 2>&1 &
DAEMON_PID=$!
daemon_ready() {
  kill -0 "$DAEMON_PID" 2>/dev/null || die "dbpool exited during startup"
  grpc_serving "$ADDR" dbpool.pool.pg
}
wait_for 60 "dbpool health SERVING on $ADDR" daemon_ready

# --- 1. small queries ------------------------------------------------------------------
SMALL_OUT="$WORK/small.jsonl"
: >"$SMALL_OUT"
log "1. small queries: modes $SMALL_MODES x clients {$CLIENTS} x $REPS reps, ${DURATION}s each"
for rep in $(seq 1 "$REPS"); do
  for clients in $CLIENTS; do
    for mode in $SMALL_MODES; do
      # The loadgen mode is the name's first word (grpc_nocache, direct_fair → grpc, direct).
      args=(--mode "${mode%%_*}" --clients "$clients" --duration "$DURATION"
        --warmup "$WARMUP" --pool 20 --rows "$SMALL_ROWS" --table "$SMALL")
      case $mode in
        grpc | flight) args+=(--endpoint "http://$ADDR" --server-pid "$DAEMON_PID") ;;
        grpc_unix | flight_unix) args+=(--endpoint "unix:$SOCK" --server-pid "$DAEMON_PID"
          --label "$mode") ;;
        grpc_nocache) args+=(--endpoint "http://$ADDR" --server-pid "$DAEMON_PID"
          --pool-id pg_nocache --label grpc_nocache) ;;
        # Clean sessions (issue 17): every 10th query dirties its session, so the
        # daemon resets that connection; and a pool that resets after every use.
        grpc_dirty) args+=(--endpoint "http://$ADDR" --server-pid "$DAEMON_PID"
          --dirty-every 10 --label grpc_dirty) ;;
        grpc_always) args+=(--endpoint "http://$ADDR" --server-pid "$DAEMON_PID"
          --pool-id pg_always --label grpc_always) ;;
        direct) args+=(--url "$PG_URL") ;;
        # The same with connections taken first come, first served (loadgen --fair).
        direct_fair) args+=(--url "$PG_URL" --fair --label direct_fair) ;;
        pgbouncer) args+=(--url "postgres://postgres@127.0.0.1:$PGB_PORT/$DB" --server-pid "$PGB_PID") ;;
      esac
      line="$("$LOADGEN" "${args[@]}")"
      printf '%s\n' "${line%\}},\"rep\":$rep}" >>"$SMALL_OUT"
      printf '  rep %s %-9s %3s clients: %s\n' "$rep" "$mode" "$clients" "$line" >&2
    done
  done
done

# --- 2. wide table into Polars ---------------------------------------------------------
log "2. read $WIDE into Polars, $READ_REPS reps per tool"
"${PY[@]}" benches/python/read_polars.py --endpoint "grpc://$ADDR" --pg-url "$PG_URL" \
  --table "$WIDE" --reps "$READ_REPS" >"$WORK/read.json"

# --- 3. daemon RSS while streaming -----------------------------------------------------
log "3. daemon RSS while streaming $STREAM_ROWS rows"
# shellcheck disable=SC2086
"${PY[@]}" benches/python/stream_rss.py --endpoint "grpc://$ADDR" --pid "$DAEMON_PID" \
  --rows $STREAM_ROWS >"$WORK/stream.json"

# --- 4. bulk insert --------------------------------------------------------------------
log "4. bulk insert of $INS_ROWS rows, $READ_REPS reps per tool"
"${PY[@]}" benches/python/bulk_insert.py --endpoint "grpc://$ADDR" --pg-url "$PG_URL" \
  --rows "$INS_ROWS" --reps "$READ_REPS" >"$WORK/insert.json"

# --- 5. small queries from Python ------------------------------------------------------
if ((QUICK)); then PYQ=(--tasks "1 16" --threads "1 8" --duration 0.3 --warmup 0.1 --reps 1)
else PYQ=(--tasks "1 16 64" --threads "1 8" --duration "$DURATION" --warmup "$WARMUP" --reps "$REPS"); fi
log "5. small queries from Python: ${PYQ[*]}"
"${PY[@]}" benches/python/small_queries.py --endpoint "grpc://$ADDR" --pool pg --pool-size 20 \
  --pg-url "$PG_URL" --table "$SMALL" --rows "$SMALL_ROWS" "${PYQ[@]}" >"$WORK/pyquery.json"

# --- results ---------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
"${PY[@]}" benches/python/collect.py --work "$WORK" --out "$OUT" --quick "$QUICK" \
  --duration "$DURATION" --reps "$REPS" --read-reps "$READ_REPS"
log "results: $OUT (+ charts beside it); took $((SECONDS - started)) s"
