//! Database backends of dbpool: one folder and one cargo feature per database, each
//! behind its own bb8 pool and exposed to the server only as `Arc<dyn Backend>`.
mod breaker;
pub mod exec;
pub mod failover;
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
#[cfg(feature = "sqlite")]
pub mod sqlite;

use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{Backend, BackendFactory, Error, Result};
use std::sync::Arc;

pub use pool::{Managed, PoolHandle};

/// Builds the backend a resolved pool config asks for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Factory;

#[async_trait]
impl BackendFactory for Factory {
    /// One backend, or with `backup_urls` a failover wrapper around the primary's and
    /// one per backup.
    async fn create(&self, pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
        let primary = single(pool_id, pool)?;
        if pool.backup_urls.is_empty() {
            return Ok(primary);
        }
        let backups = (1..=pool.backup_urls.len())
            .map(|n| {
                single(
                    &format!("{pool_id}:backup{n}"),
                    &failover::backup_pool(pool, n)?,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(failover::FailoverBackend::new(
            pool_id,
            primary,
            backups,
            std::time::Duration::from_millis(pool.options.breaker_cooldown_ms),
        )))
    }
}

/// The backend of one server.
fn single(pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
    match pool.kind {
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => Ok(Arc::new(postgres::PgBackend::new(pool_id, pool)?)),
        #[cfg(feature = "sqlite")]
        BackendKind::Sqlite => Ok(Arc::new(sqlite::SqliteBackend::new(pool_id, pool)?)),
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
