//! A server assembled from injected parts ([`ServerBuilder`]), and its life: serving
//! PoolService, Flight, health and reflection on one port until asked to stop, its
//! background tasks (tasks.rs) alongside, then a graceful stop (the steps in serve.rs).
mod builder;
pub mod clock;
mod error;
mod serve;
mod tasks;

pub use builder::{ServerBuilder, DEFAULT_BLOCKING_THREADS};
pub use error::ServerError;

use crate::calls::Calls;
use crate::flight::{FlightImpl, FlightState};
use crate::pool_service::PoolServiceImpl;
use clock::{Clock, Ticker};
use dbpool_config::Config;
use dbpool_core::PoolManager;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tasks::Tasks;

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
    flight: Arc<FlightState>,
    /// Who may call, and the audit log.
    access: crate::conn::Access,
}

impl Server {
    /// Starts assembling a server from `config`; every part has a default:
    ///
    /// ```no_run
    /// # async fn demo(config: dbpool_config::Config, listener: dbpool_server::Listener)
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

    /// What the Flight service keeps per server (its prepared statements).
    pub fn flight_state(&self) -> &Arc<FlightState> {
        &self.flight
    }

    /// The server's pools.
    pub fn manager(&self) -> &Arc<PoolManager> {
        &self.calls.manager
    }

    /// Serves until `shutdown` resolves (or a task of the server panics), then stops
    /// accepting, lets in-flight calls finish (up to `server.shutdown_grace_secs`),
    /// stops its tasks, rolls back open transactions and closes the pools. A panicked
    /// task is the error. `listener` is a `tokio::net::TcpListener` or a
    /// [`crate::Listener`] (TCP or a Unix socket, see [`crate::Listener::bind`]); the
    /// addresses of `server.extra_listen` are opened here and serve the same. A Unix
    /// socket's file is removed once the server stopped serving.
    pub async fn serve(
        self,
        listener: impl Into<crate::Listener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            config,
            calls,
            clock,
            call_spans,
            flight,
            access,
        } = self;
        let mut listeners = vec![listener.into()];
        listeners.extend(crate::Listener::bind_extra(&config.server).await?);
        let addrs: Vec<String> = listeners.iter().map(crate::Listener::addr).collect();
        let (listeners, socket_files): (Vec<_>, Vec<_>) = listeners
            .into_iter()
            .map(crate::Listener::into_parts)
            .unzip();
        let metrics = serve::bind_metrics(&config.server).await?;
        let probes = serve::bind_probes(&config.server).await?;
        let tls = match &config.server.tls {
            Some(files) => Some(crate::tls::TlsState::load(files)?),
            None => None,
        };
        let (health, health_service) = serve::health(&config.server, &calls.manager).await;
        let probe_health = health_service.clone();
        let prepared = flight.clone();
        let flight = FlightImpl::new(
            calls.clone(),
            &config.server.limits,
            flight,
            access.tenants.clone(),
        );
        let pool_service = PoolServiceImpl::new(
            calls.clone(),
            health.clone(),
            config.server.data_dir.clone(),
        );
        let router = serve::router(
            &config,
            pool_service,
            flight,
            health_service,
            call_spans,
            access,
        )?;

        let mut tasks = Tasks::new();
        if let Some(l) = probes {
            serve::spawn_probes(&mut tasks, l, probe_health);
        }
        if let Some(state) = &tls {
            let (state, tick) = (
                state.clone(),
                Ticker::new(clock.clone(), crate::tls::RELOAD_INTERVAL),
            );
            tasks.spawn("tls", |cancel| crate::tls::watch(state, tick, cancel));
        }
        let (closed_tx, closed_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        serve::spawn_tasks(
            &mut tasks,
            serve::Background {
                health,
                health_interval: Duration::from_millis(config.server.health_check_interval_ms),
                manager: calls.manager.clone(),
                metrics,
                txs: calls.txs.clone(),
                prepared,
                closed: closed_rx,
                clock: clock.clone(),
            },
        );
        let incoming = crate::accept::incoming(listeners, &config.server.limits, closed_tx, tls);
        tracing::info!(addr = %addrs[0], extra_addrs = %addrs[1..].join(","), tls = config.server.tls.is_some(), pools = calls.manager.list().len(), "dbpool serving");
        let served = serve::until_stopped(
            router,
            incoming,
            &config.server,
            shutdown,
            &mut tasks,
            &*clock,
        )
        .await;
        // Not accepting any more: a daemon started now may take the socket's path.
        drop(socket_files);
        let grace = Duration::from_secs(config.server.shutdown_grace_secs);
        let stopped = tasks.shutdown(&*clock, grace.min(TASKS_STOP_WITHIN)).await;
        serve::close(&calls).await;
        served.and(stopped)
    }
}
