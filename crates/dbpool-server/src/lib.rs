//! The dbpool gRPC server: PoolService, Arrow Flight, grpc.health.v1 and reflection on one
//! port. A [`Server`] is assembled from its config and injected parts (backend factory,
//! clock, authorizer, middleware) by [`Server::builder`]; `run(config, listener,
//! shutdown)` serves one with the default parts.
mod accept;
pub mod audit;
pub mod auth;
mod bounds;
mod call_scope;
mod calls;
mod conn;
mod convert;
mod flight;
#[doc(hidden)]
pub mod fuzzing;
mod health;
pub mod hooks;
mod ipc_chunks;
mod ipc_encode;
mod listener;
mod metrics_http;
mod pool_service;
mod rows;
mod schema_cache;
mod server;
pub mod status;
mod stream;
pub mod telemetry;
mod timed;
mod tls;

use dbpool_config::Config;
use std::future::Future;

pub use flight::FlightState;
pub use health::service_name as health_service_name;
pub use listener::{ListenError, Listener, SocketFile};
pub use server::clock::{Clock, TokioClock};
pub use server::{Server, ServerBuilder, ServerError, DEFAULT_BLOCKING_THREADS};
pub use tls::TlsError;

/// Serves `config` with the default parts until `shutdown` resolves, then stops
/// accepting, lets in-flight calls finish (up to `server.shutdown_grace_secs`) and
/// closes the pools. See [`Server::builder`] for a server with other parts.
pub async fn run(
    config: Config,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::builder(config)
        .build()
        .await?
        .serve(listener, shutdown)
        .await
}
