//! The steps of [`super::Server::serve`]: the metrics and probe listeners, health, the
//! services on one port, the background tasks, serving until asked to stop, and closing.
use super::clock::{Clock, Ticker};
use super::tasks::{self, Tasks};
use super::{ServerError, REAP_INTERVAL};
use crate::calls::Calls;
use crate::flight::FlightImpl;
use crate::health::Health;
use crate::pool_service::PoolServiceImpl;
use crate::{accept, conn, metrics_http, telemetry};
use arrow_flight::flight_service_server::FlightServiceServer;
use dbpool_config::{Config, ServerConfig};
use dbpool_core::{PoolManager, TxRegistry};
use dbpool_proto::v1::pool_service_server::PoolServiceServer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{JoinError, JoinHandle};
use tonic::transport::server::Router;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};

/// The listener of the metrics endpoint, when `server.metrics_listen` asks for one.
pub(super) async fn bind_metrics(
    server: &ServerConfig,
) -> Result<Option<TcpListener>, ServerError> {
    let Some(addr) = &server.metrics_listen else {
        return Ok(None);
    };
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Metrics(addr.clone(), e))?;
    tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics endpoint at /metrics");
    Ok(Some(l))
}

/// The listener of the health-probe port, when `server.probe_listen` asks for one.
pub(super) async fn bind_probes(server: &ServerConfig) -> Result<Option<TcpListener>, ServerError> {
    let Some(addr) = &server.probe_listen else {
        return Ok(None);
    };
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Probe(addr.clone(), e))?;
    tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "grpc.health.v1 for probes");
    Ok(Some(l))
}

/// Serves only `grpc.health.v1` on the probe port until the server stops: Kubernetes
/// probes reach it over TCP while the services listen on a Unix socket.
pub(super) fn spawn_probes<T: HealthService>(
    tasks: &mut Tasks,
    listener: TcpListener,
    health: HealthServer<T>,
) {
    tasks.spawn("probes", |cancel| async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let served = tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "health-probe port failed");
        }
    });
}

/// The health publisher and its grpc.health.v1 service, with every pool published.
pub(super) async fn health(
    server: &ServerConfig,
    manager: &PoolManager,
) -> (Health, HealthServer<impl HealthService>) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<PoolServiceServer<PoolServiceImpl>>()
        .await;
    let health = Health::new(reporter, server.readiness, server.required_pools.clone());
    for entry in manager.list() {
        health.pool_added(&entry).await;
    }
    // Not ready until the first round of checks has run.
    health.publish_overall(manager).await;
    (health, service)
}

/// The services on one port: health, reflection, PoolService and Flight, each call but
/// health's in its scope (client connection, caller, per-call spans, audit).
pub(super) fn router(
    config: &Config,
    pool_service: PoolServiceImpl,
    flight: FlightImpl,
    health: HealthServer<impl HealthService>,
    call_spans: bool,
    access: conn::Access,
) -> Result<Router, ServerError> {
    let limits = &config.server.limits;
    let max_message = limits.max_message_bytes;
    let in_call = |s| conn::InCall::new(s, call_spans, access.clone());
    let pool_service = in_call(
        PoolServiceServer::new(pool_service)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
    );
    let flight_service = conn::InCall::new(
        FlightServiceServer::new(flight)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
        call_spans,
        access.clone(),
    );
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(dbpool_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
    Ok(tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(ms(limits.http2_keepalive_interval_ms))
        .http2_keepalive_timeout(ms(limits.http2_keepalive_timeout_ms))
        .trace_fn(move |req| telemetry::rpc_span(req, call_spans))
        // Health answers everyone (kubelet probes carry no token); reflection describes
        // the API to callers who may use it.
        .add_service(health)
        .add_service(conn::InCall::new(
            reflection().build_v1()?,
            call_spans,
            access.clone(),
        ))
        .add_service(conn::InCall::new(
            reflection().build_v1alpha()?,
            call_spans,
            access,
        ))
        .add_service(pool_service)
        .add_service(flight_service))
}

/// What the background tasks work on.
pub(super) struct Background {
    /// Publishes what the checks find.
    pub health: Health,
    /// `server.health_check_interval_ms`.
    pub health_interval: Duration,
    /// The pools checked and scraped.
    pub manager: Arc<PoolManager>,
    /// The metrics endpoint's listener, when configured.
    pub metrics: Option<TcpListener>,
    /// Open transactions, reaped when idle or when their connection closes.
    pub txs: Arc<TxRegistry>,
    /// Flight SQL prepared statements, reaped the same way.
    pub prepared: Arc<crate::flight::FlightState>,
    /// Ids of client connections as they close.
    pub closed: UnboundedReceiver<u64>,
    /// What the ticks wait on.
    pub clock: Arc<dyn Clock>,
}

/// Starts the health checks, the metrics endpoint (when configured) and the reaper.
pub(super) fn spawn_tasks(tasks: &mut Tasks, b: Background) {
    let tick = Ticker::new(b.clock.clone(), b.health_interval);
    let checked = b.manager.clone();
    tasks.spawn("health", |cancel| b.health.run(checked, tick, cancel));
    if let Some(l) = b.metrics {
        let scraped = b.manager;
        tasks.spawn("metrics", |cancel| async move {
            if let Err(e) = metrics_http::serve(l, scraped, cancel.cancelled_owned()).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        });
    }
    let tick = Ticker::new(b.clock, REAP_INTERVAL);
    let (txs, prepared, closed) = (b.txs, b.prepared, b.closed);
    tasks.spawn("reaper", |cancel| {
        tasks::reap(txs, prepared, closed, tick, cancel)
    });
}

type Grpc = JoinHandle<Result<(), tonic::transport::Error>>;

/// Serves `router` on the accepted connections until `shutdown` resolves or a task panics, then stops
/// it gracefully; the gRPC server's own end (a transport error, a panic) is the result.
pub(super) async fn until_stopped(
    router: Router,
    incoming: accept::Incoming,
    server: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tasks: &mut Tasks,
    clock: &dyn Clock,
) -> Result<(), ServerError> {
    telemetry::init_propagation();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut grpc = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stop_rx.await;
    }));
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    tokio::select! {
        r = &mut grpc => grpc_ended(r),
        _ = shutdown => {
            tracing::info!(grace_secs = grace.as_secs(), "shutting down: finishing in-flight calls");
            stop(stop_tx, &mut grpc, clock, grace).await
        }
        e = tasks.panicked() => {
            tracing::error!(error = %e, "a server task failed: shutting down");
            let _ = stop(stop_tx, &mut grpc, clock, grace).await;
            Err(e)
        }
    }
}

/// Stops accepting and waits up to `grace` for the calls in flight; the ones still
/// running then are cancelled.
async fn stop(
    stop_tx: tokio::sync::oneshot::Sender<()>,
    grpc: &mut Grpc,
    clock: &dyn Clock,
    grace: Duration,
) -> Result<(), ServerError> {
    let _ = stop_tx.send(());
    tokio::select! {
        r = &mut *grpc => grpc_ended(r),
        _ = clock.sleep_until(clock.now() + grace) => {
            tracing::warn!("grace period over: cancelling the calls still running");
            grpc.abort();
            grpc_ended((&mut *grpc).await)
        }
    }
}

/// What the end of the gRPC server task means: a transport error or a panic is the
/// server's error; cancelled is what `stop` did at the end of the grace period.
fn grpc_ended(
    r: Result<Result<(), tonic::transport::Error>, JoinError>,
) -> Result<(), ServerError> {
    match r {
        Ok(r) => r.map_err(ServerError::from),
        Err(e) if e.is_panic() => Err(tasks::panic_error("grpc", e)),
        Err(_) => Ok(()),
    }
}

/// Rolls back the transactions still open and closes the pools.
pub(super) async fn close(calls: &Calls) {
    let rolled_back = calls.txs.rollback_all().await;
    if rolled_back > 0 {
        tracing::info!(
            transactions = rolled_back,
            "open transactions rolled back at shutdown"
        );
    }
    let pools = calls.manager.clear();
    tracing::info!(pools = pools.len(), "pools closed");
}
