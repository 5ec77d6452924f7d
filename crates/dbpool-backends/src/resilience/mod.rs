//! Resilience, one layer around every backend: how a call survives a database that
//! fails, so the server never reasons about it. From the outside in:
//!
//! - [`retry`]: a query whose connection failed before any row was sent is tried again;
//! - [`failover`]: reads move to a backup while the primary is down, writes are refused
//!   as read-only degraded mode (pools with `backup_urls`);
//! - per server, inside its pool ([`crate::PoolHandle::acquire`]): callers wait for a
//!   connection in arrival order in a bounded queue ([`admission`]), learn at once when
//!   connecting fails, and the [`breaker`] fails calls fast after repeated failures.
//!
//! Every decision matches on [`dbpool_core::UnavailableCause`], never on message text.
pub(crate) mod admission;
pub(crate) mod breaker;
pub mod failover;
pub mod retry;
#[cfg(test)]
mod scripted;

use dbpool_config::ResolvedPool;
use dbpool_core::Backend;
use std::sync::Arc;
use std::time::Duration;

pub use failover::{FailoverBackend, ReadOnlyBackup};
pub use retry::{Backoff, Retrying};

/// A pool's backup servers and how their database kind serves as a read-only backup.
pub struct Backups {
    /// One backend per backup URL, in order.
    pub servers: Vec<Arc<dyn Backend>>,
    /// How to tell a backup's refusal of a write.
    pub read_only: ReadOnlyBackup,
}

/// Puts the resilience layer around a pool's backend: failover from `primary` to its
/// `backups` when it has any, and retry of reads outermost.
pub fn wrap(
    pool_id: &str,
    pool: &ResolvedPool,
    primary: Arc<dyn Backend>,
    backups: Option<Backups>,
) -> Arc<dyn Backend> {
    let backend: Arc<dyn Backend> = match backups {
        Some(b) if !b.servers.is_empty() => Arc::new(FailoverBackend::new(
            pool_id,
            primary,
            b.servers,
            Duration::from_millis(pool.options.breaker_cooldown_ms),
            &b.read_only,
        )),
        _ => primary,
    };
    Arc::new(Retrying::new(backend, Backoff::default()))
}
