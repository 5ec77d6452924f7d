//! A server assembled from injected parts ([`ServerBuilder`]), and its life: serving
//! PoolService, Flight, health and reflection on one port until asked to stop, its
//! background tasks (tasks.rs) alongside, then a graceful stop.
mod builder;
pub mod clock;
mod error;
mod tasks;

pub use builder::{ServerBuilder, DEFAULT_BLOCKING_THREADS};
pub use error::ServerError;

use crate::calls::Calls;
use crate::flight::{self, FlightImpl};
use crate::health::Health;
use crate::pool_service::PoolServiceImpl;
use crate::{accept, conn, metrics_http, telemetry};
use arrow_flight::flight_service_server::FlightServiceServer;
use clock::{Clock, Ticker};
use dbpool_config::Config;
use dbpool_core::PoolManager;
use dbpool_proto::v1::pool_service_server::PoolServiceServer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tasks::Tasks;
use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle};
use tonic::transport::server::Router;

/// How often idle transactions and prepared statements are looked for.
const REAP_INTERVAL: Duration = Duration::from_millis(250);

/// The longest the background tasks get to stop once cancelled (less when the grace
/// period is shorter): they stop at once unless a rollback of the reaper is under way.
const TASKS_STOP_WITHIN: Duration = Duration::from_secs(5);

/// A server ready to serve: its pools created, its parts in place.
pub struct Server {
    config: Config,
    calls: Calls,
    clock: Arc<dyn Clock>,
    call_spans: bool,
}

impl Server {
    /// Starts assembling a server from `config`; every part has a default:
    ///
    /// ```no_run
    /// # async fn demo(config: dbpool_config::Config, listener: tokio::net::TcpListener)
    /// # -> Result<(), dbpool_server::ServerError> {
    /// let server = dbpool_server::Server::builder(config)
    ///     .blocking_threads(512)
    ///     .call_spans(false)
    ///     .build()
    ///     .await?;
    /// server.serve(listener, std::future::pending()).await
    /// # }
    /// ```
    pub fn builder(config: Config) -> ServerBuilder {
        ServerBuilder::new(config)
    }

    /// The server's pools.
    pub fn manager(&self) -> &Arc<PoolManager> {
        &self.calls.manager
    }

    /// Serves until `shutdown` resolves (or a task of the server panics), then stops
    /// accepting, lets in-flight calls finish (up to `server.shutdown_grace_secs`),
    /// stops its tasks, rolls back open transactions and closes the pools. A panicked
    /// task is the error.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            config,
            calls,
            clock,
            call_spans,
        } = self;
        let server = &config.server;
        let manager = calls.manager.clone();
        let metrics = match &server.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| ServerError::Metrics(addr.clone(), e))?,
            ),
            None => None,
        };
        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_serving::<PoolServiceServer<PoolServiceImpl>>()
            .await;
        let health = Health::new(reporter, server.readiness, server.required_pools.clone());
        for entry in manager.list() {
            health.pool_added(&entry).await;
        }
        // Not ready until the first round of checks has run.
        health.publish_overall(&manager).await;
        let flight = FlightImpl::new(calls.clone(), &server.limits);
        let prepared = flight.prepared();
        if let Ok(addr) = listener.local_addr() {
            flight::prepared::register_server(addr, &prepared);
        }
        let pool_service = PoolServiceImpl::new(calls.clone(), health.clone());
        let router = router(&config, pool_service, flight, health_service, call_spans)?;

        let mut tasks = Tasks::new();
        let interval = Duration::from_millis(server.health_check_interval_ms);
        let tick = Ticker::new(clock.clone(), interval);
        let checked = manager.clone();
        tasks.spawn("health", |cancel| health.run(checked, tick, cancel));
        if let Some(l) = metrics {
            tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics endpoint at /metrics");
            let scraped = manager.clone();
            tasks.spawn("metrics", |cancel| async move {
                if let Err(e) = metrics_http::serve(l, scraped, cancel.cancelled_owned()).await {
                    tracing::error!(error = %e, "metrics endpoint failed");
                }
            });
        }
        let (closed_tx, closed_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let tick = Ticker::new(clock.clone(), REAP_INTERVAL);
        let txs = calls.txs.clone();
        tasks.spawn("reaper", |cancel| {
            tasks::reap(txs, prepared, closed_rx, tick, cancel)
        });

        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), pools = manager.list().len(), "dbpool serving");
        telemetry::init_propagation();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = accept::incoming(listener, &server.limits, closed_tx);
        let mut grpc = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        }));
        let grace = Duration::from_secs(server.shutdown_grace_secs);
        let served = tokio::select! {
            r = &mut grpc => grpc_ended(r),
            _ = shutdown => {
                tracing::info!(grace_secs = grace.as_secs(), "shutting down: finishing in-flight calls");
                stop(stop_tx, &mut grpc, &*clock, grace).await
            }
            e = tasks.panicked() => {
                tracing::error!(error = %e, "a server task failed: shutting down");
                let _ = stop(stop_tx, &mut grpc, &*clock, grace).await;
                Err(e)
            }
        };
        let stopped = tasks.shutdown(&*clock, grace.min(TASKS_STOP_WITHIN)).await;
        let rolled_back = calls.txs.rollback_all().await;
        if rolled_back > 0 {
            tracing::info!(
                transactions = rolled_back,
                "open transactions rolled back at shutdown"
            );
        }
        let pools = manager.clear();
        tracing::info!(pools = pools.len(), "pools closed");
        served.and(stopped)
    }
}

/// The services on one port: health, reflection, PoolService and Flight, each call in
/// its scope (client connection, per-call spans).
fn router(
    config: &Config,
    pool_service: PoolServiceImpl,
    flight: FlightImpl,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    call_spans: bool,
) -> Result<Router, ServerError> {
    let limits = &config.server.limits;
    let max_message = limits.max_message_bytes;
    let pool_service = conn::Scoped::new(
        PoolServiceServer::new(pool_service)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
        call_spans,
    );
    let flight_service = conn::Scoped::new(
        FlightServiceServer::new(flight)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
        call_spans,
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
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(pool_service)
        .add_service(flight_service))
}

type Grpc = JoinHandle<Result<(), tonic::transport::Error>>;

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
