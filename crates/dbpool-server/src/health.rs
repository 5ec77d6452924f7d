//! grpc.health.v1: the overall status plus one service `dbpool.pool.<id>` per pool,
//! kept current by a background check of every pool.
use crate::server::clock::Ticker;
use dbpool_config::Readiness;
use dbpool_core::{PoolEntry, PoolManager};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The health service name of a pool.
pub fn service_name(pool_id: &str) -> String {
    format!("dbpool.pool.{pool_id}")
}

/// Publishes pool health to the grpc.health.v1 service.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    readiness: Readiness,
    required: Arc<Vec<String>>,
}

impl Health {
    /// Wraps a reporter; `readiness` decides the overall service ("").
    pub fn new(reporter: HealthReporter, readiness: Readiness, required: Vec<String>) -> Self {
        Health {
            reporter,
            readiness,
            required: Arc::new(required),
        }
    }

    /// Sets the overall status from the pools' health and the readiness policy.
    pub async fn publish_overall(&self, manager: &PoolManager) {
        let pools = manager.list();
        let ready = match self.readiness {
            Readiness::None => true,
            Readiness::All => pools.iter().all(|p| p.healthy()),
            Readiness::Required => self
                .required
                .iter()
                .all(|id| pools.iter().any(|p| &p.id == id && p.healthy())),
        };
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
    }

    async fn publish(&self, entry: &PoolEntry) {
        let status = if entry.healthy() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter
            .set_service_status(service_name(&entry.id), status)
            .await;
    }

    /// A pool was created: publish what is known of it.
    pub async fn pool_added(&self, entry: &PoolEntry) {
        self.publish(entry).await;
    }

    /// A pool was removed: its service becomes unknown.
    pub async fn pool_removed(&self, pool_id: &str) {
        self.reporter
            .clone()
            .clear_service_status(&service_name(pool_id))
            .await;
    }

    /// Checks one pool now and publishes the result.
    pub async fn check(&self, entry: &PoolEntry, timeout: Duration) {
        let state = entry.backend.state();
        // A pool whose every connection is busy is reachable; don't queue behind it.
        let busy = state.size >= state.max_size && state.idle == 0;
        let ok = busy
            || matches!(
                tokio::time::timeout(timeout, entry.backend.health_check()).await,
                Ok(Ok(()))
            );
        if entry.set_healthy(ok) {
            tracing::info!(pool = %entry.id, healthy = ok, "pool health changed");
        }
        self.publish(entry).await;
    }

    /// Checks every pool at each tick until cancelled; a check waits at most a tick's
    /// period (5 s at most).
    pub async fn run(self, manager: Arc<PoolManager>, mut tick: Ticker, cancel: CancellationToken) {
        let timeout = tick.period().min(Duration::from_secs(5));
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let pools = manager.list();
            let checks = pools.iter().map(|p| self.check(p, timeout));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = futures::future::join_all(checks) => {}
            }
            self.publish_overall(&manager).await;
        }
    }
}
