//! [`ServerBuilder`]: a server from its config and its parts, each with a default — the
//! backend factory (the real backends), the clock (tokio's), the authorizer (the rights
//! of `[tenants]`) and the middleware chain (empty); the tenants and the audit log come
//! from the config.
use super::clock::{Clock, TokioClock};
use super::{Server, ServerError};
use crate::audit::AuditLog;
use crate::auth::rights::TenantAuthorizer;
use crate::auth::Tenants;
use crate::calls::Calls;
use crate::conn::Access;
use crate::flight::FlightState;
use crate::hooks::{Authorizer, Middleware, MiddlewareChain};
use crate::schema_cache::SchemaMessages;
use dbpool_config::{Config, PoolConfig, Secret};
use dbpool_core::{BackendFactory, PoolManager};
use std::sync::Arc;
use std::time::Duration;

/// Blocking threads of a tokio runtime built without `max_blocking_threads`.
pub const DEFAULT_BLOCKING_THREADS: usize = 512;

/// Assembles a [`Server`]; see [`Server::builder`].
pub struct ServerBuilder {
    config: Config,
    factory: Option<Arc<dyn BackendFactory>>,
    blocking_threads: usize,
    clock: Arc<dyn Clock>,
    authorizer: Option<Arc<dyn Authorizer>>,
    middleware: MiddlewareChain,
    call_spans: bool,
}

impl ServerBuilder {
    pub(super) fn new(config: Config) -> Self {
        ServerBuilder {
            config,
            factory: None,
            blocking_threads: DEFAULT_BLOCKING_THREADS,
            clock: Arc::new(TokioClock),
            authorizer: None,
            middleware: MiddlewareChain::default(),
            call_spans: true,
        }
    }

    /// Makes the pools' backends (default: `dbpool_backends::Factory`, every compiled
    /// database). A test passes a fake here.
    pub fn backend_factory(mut self, factory: Arc<dyn BackendFactory>) -> Self {
        self.factory = Some(factory);
        self
    }

    /// The `max_blocking_threads` of the runtime the server runs on (default tokio's,
    /// 512): the default backend factory sizes the threads SQLite pools may hold by it.
    pub fn blocking_threads(mut self, max_blocking_threads: usize) -> Self {
        self.blocking_threads = max_blocking_threads;
        self
    }

    /// The clock of the server's timers (default: tokio's time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Decides who may make which call (default: the rights of `[tenants]`,
    /// [`TenantAuthorizer`], which allows every call when no tenants are configured).
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Appends a middleware to the chain; they run in the order added.
    pub fn middleware(mut self, middleware: Arc<dyn Middleware>) -> Self {
        self.middleware.push(middleware);
        self
    }

    /// Whether to make the per-call trace spans (`grpc`, `db`; default on). Only traces
    /// use them: the binary turns them off when no OTLP exporter is configured.
    pub fn call_spans(mut self, on: bool) -> Self {
        self.call_spans = on;
        self
    }

    /// Checks the config and creates its pools (lazily: a database that is down makes
    /// its pool NOT_SERVING, not the server fail).
    pub async fn build(self) -> Result<Server, ServerError> {
        let config = self.config;
        config.server.validate()?;
        config.validate_access()?;
        dbpool_config::check_exposure(&config.server, !config.tenants.is_empty())?;
        let access = Access {
            tenants: Tenants::from_config(&config).map_err(ServerError::Access)?,
            audit: match &config.audit {
                Some(a) => Some(
                    AuditLog::open(a)
                        .map_err(|e| ServerError::Access(format!("audit.path {}: {e}", a.path)))?,
                ),
                None => None,
            },
        };
        let limits = config.server.limits.clone();
        let factory = self
            .factory
            .unwrap_or_else(|| Arc::new(dbpool_backends::Factory::new(self.blocking_threads)));
        let manager = Arc::new(PoolManager::new(factory).with_max_pools(limits.max_pools));
        create_pools(&config, &manager).await?;
        let tx_idle = Duration::from_millis(config.server.transaction_idle_timeout_ms);
        let calls = Calls {
            trace_sql: config.server.trace_sql,
            authorizer: self
                .authorizer
                .unwrap_or_else(|| Arc::new(TenantAuthorizer)),
            middleware: Arc::new(self.middleware),
            schemas: Arc::new(SchemaMessages::default()),
            tenants: access.tenants.clone(),
            ..Calls::new(manager, tx_idle, limits)
        };
        Ok(Server {
            flight: FlightState::new(&config.server.limits),
            config,
            calls,
            clock: self.clock,
            call_spans: self.call_spans,
            access,
        })
    }
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
