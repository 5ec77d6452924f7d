//! The dbpool gRPC server: PoolService, Arrow Flight, grpc.health.v1 and reflection on one
//! port. `run(config, listener, shutdown)` is all the binary calls.
mod accept;
mod auth;
mod bounds;
mod calls;
mod conn;
mod convert;
mod flight;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod ipc_chunks;
mod ipc_encode;
mod metrics_http;
mod pool_service;
mod rows;
pub mod status;
pub mod telemetry;
mod timed;

use arrow_flight::flight_service_server::FlightServiceServer;
use dbpool_config::{Config, PoolConfig, Secret};
use dbpool_core::PoolManager;
use dbpool_proto::v1::pool_service_server::PoolServiceServer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub use flight::FlightState;
pub use health::service_name as health_service_name;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A configured pool is invalid.
    #[error("pool `{id}`: {source}")]
    Pool {
        /// The pool id.
        id: String,
        /// What is wrong.
        source: dbpool_core::Error,
    },
    /// The gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint {0}: {1}")]
    Metrics(String, std::io::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Creates the configured pools, or the embedded SQLite pool `default` when none is.
async fn create_pools(config: &Config, manager: &PoolManager) -> Result<(), ServerError> {
    let mut pools = config.pools.clone();
    if pools.is_empty() && config.server.default_pool {
        let path = config.server.data_dir.join("default.db");
        pools.insert(
            "default".into(),
            PoolConfig {
                url: Some(Secret::new(format!("sqlite://{}", path.display()))),
                ..Default::default()
            },
        );
    }
    for (id, pool) in &pools {
        // Lazy: a database that is down at start makes its pool NOT_SERVING, not the daemon fail.
        manager
            .create(id, pool, false)
            .await
            .map_err(|source| ServerError::Pool {
                id: id.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight calls finish
/// (up to `server.shutdown_grace_secs`) and closes the pools.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let flight_state = FlightState::new(&config.server.limits);
    run_with_flight_state(config, listener, shutdown, flight_state).await
}

/// [`run`] with the Flight state made by the caller, who can watch it (tests).
#[doc(hidden)]
pub async fn run_with_flight_state(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    flight_state: Arc<FlightState>,
) -> Result<(), ServerError> {
    let limits = config.server.limits.clone();
    let manager = Arc::new(
        PoolManager::new(Arc::new(dbpool_backends::Factory)).with_max_pools(limits.max_pools),
    );
    create_pools(&config, &manager).await?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<PoolServiceServer<pool_service::PoolServiceImpl>>()
        .await;
    let health = health::Health::new(
        reporter,
        config.server.readiness,
        config.server.required_pools.clone(),
    );
    let interval = Duration::from_millis(config.server.health_check_interval_ms.max(100));
    for entry in manager.list() {
        health.pool_added(&entry).await;
    }
    // Not ready until the first round of checks has run.
    health.publish_overall(&manager).await;
    let health_task = tokio::spawn(health.clone().run(manager.clone(), interval));
    let metrics_task = match &config.server.metrics_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| ServerError::Metrics(addr.clone(), e))?;
            tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics endpoint at /metrics");
            Some(tokio::spawn(metrics_http::serve(
                l,
                manager.clone(),
                std::future::pending(),
            )))
        }
        None => None,
    };

    // The default idle timeout of a transaction is capped like the one a client asks for.
    let tx_idle_ms = config
        .server
        .transaction_idle_timeout_ms
        .clamp(1, limits.max_transaction_idle_timeout_ms);
    let calls = calls::Calls::new(
        manager.clone(),
        Duration::from_millis(tx_idle_ms),
        limits.clone(),
    );
    let calls = calls::Calls {
        trace_sql: config.server.trace_sql,
        ..calls
    };
    let txs = calls.txs.clone();
    let flight = flight::FlightImpl::new(calls.clone(), &limits, flight_state.clone());
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let tx_task = {
        let txs = txs.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    Some(conn) = closed_rx.recv() => {
                        txs.owner_gone(conn).await;
                        flight_state.connection_closed(conn);
                    }
                    _ = tick.tick() => {
                        txs.reap_idle().await;
                        flight_state.reap_idle();
                    }
                }
            }
        })
    };
    let max_message = limits.max_message_bytes;
    let pool_service = conn::WithConnId(
        PoolServiceServer::new(pool_service::PoolServiceImpl::new(calls.clone(), health))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
    );
    let flight_service = conn::WithConnId(
        FlightServiceServer::new(flight)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
    );
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(dbpool_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), pools = manager.list().len(), "dbpool serving");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    telemetry::init_propagation();
    let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(ms(limits.http2_keepalive_interval_ms))
        .http2_keepalive_timeout(ms(limits.http2_keepalive_timeout_ms))
        .trace_fn(telemetry::rpc_span)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(pool_service)
        .add_service(flight_service)
        .serve_with_incoming_shutdown(accept::incoming(listener, &limits, closed_tx), async {
            let _ = stop_rx.await;
        });
    let mut server = tokio::spawn(server);
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let result = tokio::select! {
        r = &mut server => r,
        _ = shutdown => {
            tracing::info!(grace_secs = grace.as_secs(), "shutting down: finishing in-flight calls");
            let _ = stop_tx.send(());
            match tokio::time::timeout(grace, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("grace period over: cancelling the calls still running");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    health_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    tx_task.abort();
    let rolled_back = txs.rollback_all().await;
    if rolled_back > 0 {
        tracing::info!(
            transactions = rolled_back,
            "open transactions rolled back at shutdown"
        );
    }
    let pools = manager.clear();
    tracing::info!(pools = pools.len(), "pools closed");
    match result {
        Ok(r) => r.map_err(ServerError::from),
        Err(e) => {
            tracing::error!(error = %e, "server task failed");
            Ok(())
        }
    }
}
