//! The calls that are not statements — pool management and reads of pools — through
//! the same admission as statements (the authorizer, then the middleware chain), and
//! what a tenant sees of the daemon's pools: only its own.
use super::Calls;
use crate::auth::{rights, upstreams};
use crate::hooks::{self, Method, Outcome};
use dbpool_config::PoolConfig;
use dbpool_core::{PoolEntry, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

impl Calls {
    /// Runs `f` as `call`: admitted first (authorizer, middleware), the middleware told
    /// its outcome after.
    pub(crate) async fn guarded<T>(
        &self,
        mut call: hooks::Call<'_>,
        f: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.admit(&mut call)?;
        let started = Instant::now();
        let r = f.await;
        let outcome = Outcome {
            error: r.as_ref().err(),
            rows: 0,
            bytes: 0,
            elapsed: started.elapsed(),
        };
        self.finish(&call, &outcome);
        r
    }

    /// Creates pool `id` from a request's `config` (already checked against the
    /// operator-only settings): a tenant that is not an admin only on its upstreams and
    /// within its pool and connection quotas; it then owns the pool.
    pub async fn create_pool(
        &self,
        id: &str,
        config: &PoolConfig,
        check: bool,
    ) -> Result<Arc<PoolEntry>> {
        let call = hooks::Call::new(Method::CreatePool, id);
        let caller = call.caller.clone();
        self.guarded(call, async {
            let Some(caller) = caller else {
                return self.manager.create(id, config, check).await;
            };
            let t = &caller.tenant;
            let resolved = config.resolve("")?;
            upstreams::check(t, &resolved)?;
            if t.admin {
                return self.manager.create(id, config, check).await;
            }
            if self.tenants.as_ref().is_some_and(|all| all.configured(id)) {
                return Err(dbpool_core::Error::PermissionDenied(format!(
                    "pool id `{}` belongs to the config; tenant `{}` may not create it",
                    dbpool_core::clip(id),
                    t.name
                )));
            }
            t.reserve(id, resolved.options.max_connections)?;
            let created = self.manager.create(id, config, check).await;
            if created.is_err() {
                t.remove_owned(id);
            }
            created
        })
        .await
    }

    /// Removes pool `id` (an admin, or the tenant that created it).
    pub async fn remove_pool(&self, id: &str) -> Result<Arc<PoolEntry>> {
        let call = hooks::Call::new(Method::RemovePool, id);
        self.guarded(call, async {
            let entry = self.manager.remove(id)?;
            for t in self.tenants.iter().flat_map(|t| t.all()) {
                t.remove_owned(id);
            }
            Ok(entry)
        })
        .await
    }

    /// Pool `id`, for its status or metrics.
    pub async fn read_pool(&self, id: &str) -> Result<Arc<PoolEntry>> {
        let call = hooks::Call::new(Method::ReadPools, id);
        self.guarded(call, async { self.manager.get(id) }).await
    }

    /// The pools the caller may see (every pool when no tenants are configured, or for
    /// an admin).
    pub async fn visible_pools(&self) -> Result<Vec<Arc<PoolEntry>>> {
        let call = hooks::Call::new(Method::ReadPools, "");
        let caller = call.caller.clone();
        self.guarded(call, async {
            let mut pools = self.manager.list();
            if let Some(c) = caller {
                pools.retain(|p| rights::sees(&c.tenant, &p.id));
            }
            Ok(pools)
        })
        .await
    }
}
