//! `PoolManager`: the named pools of the daemon, created and removed at runtime.
use crate::{Backend, BackendFactory, Error, PoolCounters, PoolSnapshot, Result};
use dbpool_config::{validate_pool_id, PoolConfig, ResolvedPool};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One named pool: its backend, config and counters.
///
/// Calls hold an `Arc<PoolEntry>` while they run, so removing a pool from the manager lets
/// in-flight calls finish; the connections close when the last call lets go.
pub struct PoolEntry {
    /// The pool's id.
    pub id: String,
    /// The database behind it.
    pub backend: Arc<dyn Backend>,
    /// Its resolved config (URL with password: never print it, use `redacted_url`).
    pub config: ResolvedPool,
    /// Call counters.
    pub counters: PoolCounters,
    healthy: AtomicBool,
}

impl PoolEntry {
    /// Whether the last health check reached the database.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records the outcome of a health check; returns true when it changed.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed) != healthy
    }

    /// Counters and connection numbers right now.
    pub fn snapshot(&self) -> PoolSnapshot {
        self.counters
            .snapshot(self.backend.state(), self.backend.acquire_wait())
    }
}

/// The daemon's pools by id. Safe to share between tasks.
pub struct PoolManager {
    pools: RwLock<BTreeMap<String, Arc<PoolEntry>>>,
    /// Ids being created right now, so two concurrent creates of one id cannot both win.
    creating: Mutex<HashSet<String>>,
    factory: Arc<dyn BackendFactory>,
    started: Instant,
    max_pools: usize,
}

impl PoolManager {
    /// An empty manager that builds backends with `factory`.
    pub fn new(factory: Arc<dyn BackendFactory>) -> Self {
        PoolManager {
            pools: RwLock::new(BTreeMap::new()),
            creating: Mutex::new(HashSet::new()),
            factory,
            started: Instant::now(),
            max_pools: usize::MAX,
        }
    }

    /// Holds at most `max_pools` pools (`server.limits.max_pools`); creates beyond it are
    /// refused with RESOURCE_EXHAUSTED.
    pub fn with_max_pools(self, max_pools: usize) -> Self {
        PoolManager { max_pools, ..self }
    }

    /// When the manager was created.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Creates a pool. With `check`, one connection is opened and tested first and the
    /// pool is not added when that fails.
    pub async fn create(
        &self,
        id: &str,
        config: &PoolConfig,
        check: bool,
    ) -> Result<Arc<PoolEntry>> {
        validate_pool_id(id).map_err(|m| Error::invalid("pool_id", m))?;
        crate::call::note_pool(id);
        let resolved = config.resolve("")?;
        {
            let pools = self.pools.read();
            let mut creating = self.creating.lock();
            if pools.contains_key(id) || creating.contains(id) {
                return Err(Error::PoolExists(crate::clip(id)));
            }
            // Pools being created count: a burst of concurrent creates cannot overshoot.
            if pools.len() + creating.len() >= self.max_pools {
                return Err(Error::ResourceExhausted(format!(
                    "the daemon holds {} pools, the most server.limits.max_pools allows",
                    self.max_pools
                )));
            }
            creating.insert(id.to_string());
        }
        let result = self.build(id, resolved, check).await;
        let mut pools = self.pools.write();
        self.creating.lock().remove(id);
        let entry = result?;
        pools.insert(id.to_string(), entry.clone());
        tracing::info!(pool = id, backend = entry.config.kind.name(), url = %entry.config.redacted_url(), "pool created");
        Ok(entry)
    }

    async fn build(&self, id: &str, resolved: ResolvedPool, check: bool) -> Result<Arc<PoolEntry>> {
        let backend = self.factory.create(id, &resolved).await?;
        let healthy = if check {
            backend.health_check().await?;
            true
        } else {
            false
        };
        Ok(Arc::new(PoolEntry {
            id: id.to_string(),
            backend,
            config: resolved,
            counters: PoolCounters::default(),
            healthy: AtomicBool::new(healthy),
        }))
    }

    /// Removes a pool; in-flight calls keep their `Arc` and finish.
    pub fn remove(&self, id: &str) -> Result<Arc<PoolEntry>> {
        let removed = self.pools.write().remove(id);
        let entry = removed.ok_or_else(|| Error::PoolNotFound(crate::clip(id)))?;
        tracing::info!(pool = id, "pool removed");
        Ok(entry)
    }

    /// The pool with this id.
    pub fn get(&self, id: &str) -> Result<Arc<PoolEntry>> {
        if id.is_empty() {
            return Err(Error::invalid("pool_id", "is empty"));
        }
        crate::call::note_pool(id);
        self.pools
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::PoolNotFound(crate::clip(id)))
    }

    /// Every pool, ordered by id.
    pub fn list(&self) -> Vec<Arc<PoolEntry>> {
        self.pools.read().values().cloned().collect()
    }

    /// Removes every pool (at shutdown).
    pub fn clear(&self) -> Vec<Arc<PoolEntry>> {
        let mut pools = self.pools.write();
        std::mem::take(&mut *pools).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchOutcome, Executor, PoolState, QueryStream, Statement};
    use async_trait::async_trait;
    use dbpool_config::{BackendKind, Secret};

    /// A fake backend: only PoolManager logic is under test here.
    struct Fake {
        reachable: bool,
    }

    #[async_trait]
    impl Executor for Fake {
        async fn query(&self, _: &str, _: Vec<crate::Param>, _: usize) -> Result<QueryStream> {
            Err(Error::Unsupported("fake".into()))
        }
        async fn execute(&self, _: &str, _: Vec<crate::Param>) -> Result<u64> {
            Ok(1)
        }
    }

    #[async_trait]
    impl Backend for Fake {
        fn kind(&self) -> BackendKind {
            BackendKind::Sqlite
        }
        async fn execute_batch(&self, _: Vec<Statement>, _: bool) -> Result<BatchOutcome> {
            Ok(vec![])
        }
        async fn health_check(&self) -> Result<()> {
            if self.reachable {
                Ok(())
            } else {
                Err(Error::unavailable(
                    crate::UnavailableCause::Connect,
                    "refused",
                ))
            }
        }
        fn state(&self) -> PoolState {
            PoolState::default()
        }
    }

    struct FakeFactory;

    #[async_trait]
    impl BackendFactory for FakeFactory {
        async fn create(&self, _: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
            tokio::task::yield_now().await;
            Ok(Arc::new(Fake {
                reachable: !pool.url.expose().contains("down"),
            }))
        }
    }

    fn cfg(url: &str) -> PoolConfig {
        PoolConfig {
            url: Some(Secret::new(url)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn create_get_remove() {
        let m = PoolManager::new(Arc::new(FakeFactory));
        m.create("a", &cfg("sqlite:///x"), true).await.unwrap();
        assert!(matches!(
            m.create("a", &cfg("sqlite:///x"), true).await,
            Err(Error::PoolExists(_))
        ));
        assert_eq!(m.list().len(), 1);
        let held = m.get("a").unwrap();
        m.remove("a").unwrap();
        assert!(matches!(m.get("a"), Err(Error::PoolNotFound(_))));
        // A call that held the entry can still use it after removal.
        assert_eq!(held.backend.execute("x", vec![]).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn failed_check_adds_nothing() {
        let m = PoolManager::new(Arc::new(FakeFactory));
        let e = m.create("b", &cfg("sqlite:///down"), true).await;
        assert!(matches!(e, Err(Error::Unavailable { .. })));
        assert!(m.list().is_empty());
        assert!(matches!(
            m.create("bad id!", &cfg("sqlite:///x"), false).await,
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[tokio::test]
    async fn concurrent_creates_of_one_id_have_one_winner() {
        let m = Arc::new(PoolManager::new(Arc::new(FakeFactory)));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(
                    async move { m.create("same", &cfg("sqlite:///x"), false).await.is_ok() },
                )
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += t.await.unwrap() as u32;
        }
        assert_eq!(wins, 1);
    }

    #[tokio::test]
    async fn max_pools_refuses_the_one_over_even_when_created_together() {
        let m = Arc::new(PoolManager::new(Arc::new(FakeFactory)).with_max_pools(3));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let m = m.clone();
                tokio::spawn(
                    async move { m.create(&format!("p{i}"), &cfg("sqlite:///x"), false).await },
                )
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => {}
                Err(Error::ResourceExhausted(m)) => {
                    assert!(m.contains("max_pools"), "{m}");
                    refused += 1;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(refused, 5);
        assert_eq!(m.list().len(), 3);
        // Room again after a remove.
        let first = m.list()[0].id.clone();
        m.remove(&first).unwrap();
        m.create("again", &cfg("sqlite:///x"), false).await.unwrap();
        assert!(matches!(
            m.create("over", &cfg("sqlite:///x"), false).await,
            Err(Error::ResourceExhausted(_))
        ));
    }
}
