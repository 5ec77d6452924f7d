//! Database backends of dbpool: one folder and one cargo feature per database, each
//! behind its own bb8 pool and exposed to the server only as `Arc<dyn Backend>`.
pub mod exec;
#[cfg(feature = "influxdb")]
pub mod influxdb;
#[cfg(feature = "mssql")]
pub mod mssql;
mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod request_policy;
pub mod resilience;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{Backend, BackendFactory, Error, Result};
use std::sync::Arc;

pub use pool::{Dirty, Managed, PoolHandle};

/// Builds the backend a resolved pool config asks for. One per server: its pools share
/// what it holds (the SQLite thread budget).
#[derive(Debug, Clone, Default)]
pub struct Factory {
    /// The blocking threads SQLite pools may hold together.
    #[cfg(feature = "sqlite")]
    sqlite_threads: Arc<sqlite::ThreadBudget>,
}

impl Factory {
    /// A factory for a runtime whose blocking pool has `max_blocking_threads` threads
    /// (`tokio::runtime::Builder::max_blocking_threads`; tokio's default is 512): SQLite
    /// pools are sized against it. [`Factory::default`] assumes tokio's default.
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    pub fn new(max_blocking_threads: usize) -> Self {
        Factory {
            #[cfg(feature = "sqlite")]
            sqlite_threads: Arc::new(sqlite::ThreadBudget::for_blocking_threads(
                max_blocking_threads,
            )),
        }
    }
}

#[async_trait]
impl BackendFactory for Factory {
    /// One backend, or with `backup_urls` one per server, inside the resilience layer.
    async fn create(&self, pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
        let primary = self.single(pool_id, pool)?;
        let backups = match pool.backup_urls.len() {
            0 => None,
            n => {
                let read_only = read_only_backup(pool.kind)?;
                let servers = (1..=n)
                    .map(|n| {
                        let backup = resilience::failover::backup_pool(pool, n, &read_only)?;
                        self.single(&format!("{pool_id}:backup{n}"), &backup)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(resilience::Backups { servers, read_only })
            }
        };
        Ok(resilience::wrap(pool_id, pool, primary, backups))
    }
}

/// How a database kind serves as a failover backup, if it can.
fn read_only_backup(kind: BackendKind) -> Result<resilience::ReadOnlyBackup> {
    match kind {
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => Ok(postgres::backup::READ_ONLY),
        #[allow(unreachable_patterns)]
        other => Err(Error::Unsupported(format!(
            "backup_urls on {} pools",
            other.name()
        ))),
    }
}

impl Factory {
    /// The backend of one server.
    fn single(&self, pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
        match pool.kind {
            #[cfg(feature = "postgres")]
            BackendKind::Postgres => Ok(Arc::new(postgres::PgBackend::new(pool_id, pool)?)),
            #[cfg(feature = "sqlite")]
            BackendKind::Sqlite => Ok(Arc::new(sqlite::SqliteBackend::from_driver(
                sqlite::SqliteDriver::with_budget(pool, &self.sqlite_threads)?,
            ))),
            #[cfg(feature = "mssql")]
            BackendKind::Mssql => Ok(Arc::new(mssql::MssqlBackend::new(pool_id, pool)?)),
            #[cfg(feature = "redis")]
            BackendKind::Redis => Ok(Arc::new(redis::RedisBackend::new(pool_id, pool)?)),
            #[cfg(feature = "influxdb")]
            BackendKind::Influxdb => Ok(Arc::new(influxdb::InfluxBackend::new(pool_id, pool)?)),
            #[allow(unreachable_patterns)]
            other => Err(Error::Unsupported(format!(
                "backend {} is not compiled into this build",
                other.name()
            ))),
        }
    }
}
