# syntax=docker/dockerfile:1
# The dbpool image: a release build of the daemon on distroless/cc (glibc, no shell),
# running as uid 65532. docs/kubernetes.md walks through it; scripts/check-deploy.sh
# lints this file and runs the binary the way this image does.
#
#   docker build -t dbpool .
#   export DBPOOL_TOKEN="$(openssl rand -hex 32)"   # tenant `app` of the built-in config
#   docker run --rm -p 50051:50051 -e DBPOOL_TOKEN dbpool   # pool `default`: SQLite
#   docker run --rm -v "$PWD/my.toml:/etc/dbpool/dbpool.toml:ro" -e DB_PASSWORD=… dbpool
#
# The build needs no protoc (protox compiles proto/ in pure Rust) and no OpenSSL
# (rustls on ring); gcc for the bundled SQLite and ring comes with the Rust image.

# The toolchain CI tests with; at least the workspace's rust-version.
ARG RUST_VERSION=1.95

# 1. The dependency skeleton: every Cargo.toml with stub targets and nothing else
#    (deploy/docker/skeleton.sh). Its output only changes when a manifest or
#    Cargo.lock does, and COPY --from is cached by content, so editing a .rs file
#    reuses the dependency layer below.
FROM rust:${RUST_VERSION}-slim-bookworm AS skeleton
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# The load generator is a workspace member: its manifest is needed to resolve the graph.
COPY benches/loadgen benches/loadgen
COPY deploy/docker/skeleton.sh /usr/local/bin/skeleton.sh
RUN skeleton.sh /src

# 2. The build: dependencies first (cached), then the workspace's own crates.
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Strip the symbols here rather than in the workspace's Cargo.toml, which the local
# release builds share; the runtime image has no debugger to use them anyway.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never
COPY --from=skeleton /src ./
# The stubs go once the dependencies are built: the real crates/ replaces them whole.
RUN cargo build --release --locked -p dbpool \
    && rm -rf crates
COPY proto proto
COPY crates crates
# COPY keeps the files' old modification times, older than the stubs' build outputs:
# touch them or cargo would take the stubs' artefacts as up to date.
RUN find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p dbpool \
    && mkdir -p /out/var/lib/dbpool \
    && cp target/release/dbpool /out/dbpool

# 3. The runtime: glibc and libgcc from distroless/cc (Debian 12, the same glibc as the
#    bookworm build image), CA certificates, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="dbpool" \
      org.opencontainers.image.description="Database connection pools behind one gRPC / Arrow Flight port" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/dbpool /usr/local/bin/dbpool
# The default config (pool `default`, embedded SQLite, tenant `app` with the token of
# DBPOOL_TOKEN); mount your own over it.
COPY deploy/docker/dbpool.toml /etc/dbpool/dbpool.toml
# The data directory of SQLite pools, writable by the runtime user. On Kubernetes an
# emptyDir is mounted here (the root filesystem is read-only there).
COPY --from=build --chown=65532:65532 /out/var/lib/dbpool /var/lib/dbpool
# Container facts rather than configuration, so they live in the image and win over
# the mounted file (environment overrides the file; set them with -e / env: to change):
# - listen on every interface: `docker run -p` arrives on the container's own address,
#   not its loopback. Beyond loopback the daemon serves only with tenants, hence the
#   built-in config's tenant. The Kubernetes manifests set 127.0.0.1:50051 instead (the
#   app is in the pod) and probe server.probe_listen.
# - the data directory is the writable volume above.
# NO_COLOR: text logs carry ANSI colours even into a pipe; none in `docker logs`.
ENV DBPOOL_CONFIG=/etc/dbpool/dbpool.toml \
    DBPOOL__SERVER__LISTEN=0.0.0.0:50051 \
    DBPOOL__SERVER__DATA_DIR=/var/lib/dbpool \
    NO_COLOR=1
# Numeric, so Kubernetes can verify runAsNonRoot (it cannot resolve user names).
USER 65532:65532
# Relative sqlite:// URLs land in the writable directory.
WORKDIR /var/lib/dbpool
# 50051: gRPC (PoolService, Arrow Flight / Flight SQL, grpc.health.v1, reflection).
# 9090: Prometheus /metrics, served when `server.metrics_listen` is set (the Kubernetes
# manifests set it); EXPOSE only documents it.
EXPOSE 50051 9090
# No HEALTHCHECK: distroless has no shell, curl or grpc client to run one, and
# Kubernetes ignores it anyway: the manifests use the kubelet's native gRPC probes on
# grpc.health.v1 (docs/kubernetes.md, "Probes"). Outside Kubernetes, probe with
# `grpcurl -plaintext -import-path scripts -proto health.proto HOST:50051
# grpc.health.v1.Health/Check`: health needs no token, but grpcurl's server reflection
# would (or add -H "authorization: Bearer $DBPOOL_TOKEN" instead of the proto).
HEALTHCHECK NONE
# SIGTERM (Docker's and Kubernetes' stop signal) shuts down gracefully: no new calls,
# in-flight calls get `server.shutdown_grace_secs`, pools are closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dbpool"]
CMD ["serve"]
