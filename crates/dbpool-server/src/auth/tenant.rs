//! A tenant as the server holds it: its rights per pool, the pools it owns, the
//! upstreams it may create pools on, and its quotas' state.
use super::quota::TenantQuotas;
use dbpool_config::{Right, TenantConfig, Upstream};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// One `[tenants.<name>]`, ready for calls.
#[derive(Debug)]
pub struct Tenant {
    /// Its name (logs, audit lines, quota errors).
    pub name: Arc<str>,
    /// May do everything.
    pub admin: bool,
    /// May create pools on `upstreams`.
    pub create_pools: bool,
    /// Where the pools it creates may point.
    pub upstreams: Vec<Upstream>,
    /// Its quotas and what they have counted.
    pub quotas: TenantQuotas,
    rights: HashMap<String, Right>,
    /// The right of `"*"`: on every pool.
    everywhere: Option<Right>,
    /// Pools it created at run time, with their `max_connections`: write and removal
    /// are its own.
    owned: Mutex<HashMap<String, u32>>,
}

impl Tenant {
    /// The tenant `name` of the config.
    pub fn new(name: &str, config: &TenantConfig) -> Self {
        let mut rights = config.pools.clone().into_iter().collect::<HashMap<_, _>>();
        let everywhere = rights.remove("*");
        let name: Arc<str> = Arc::from(name);
        Tenant {
            quotas: TenantQuotas::new(name.clone(), &config.quotas),
            name,
            admin: config.admin,
            create_pools: config.create_pools,
            upstreams: config.upstreams(),
            rights,
            everywhere,
            owned: Mutex::new(HashMap::new()),
        }
    }

    /// What it may do on `pool`: `None` when nothing (the pool is not its to see).
    pub fn right(&self, pool: &str) -> Option<Right> {
        if self.admin || self.owns(pool) {
            return Some(Right::Write);
        }
        let own = self.rights.get(pool).copied();
        own.max(self.everywhere)
    }

    /// Whether it created `pool`.
    pub fn owns(&self, pool: &str) -> bool {
        self.owned.lock().contains_key(pool)
    }

    /// Takes `pool`, of `connections` connections, as its own before it is created,
    /// within its quotas `max_pools` and `max_connections` (checked and taken at once,
    /// so concurrent creates cannot overshoot them).
    pub fn reserve(&self, pool: &str, connections: u32) -> dbpool_core::Result<()> {
        let q = self.quotas.limits();
        let mut owned = self.owned.lock();
        // Its own already (or being created by a concurrent call): taking it again would
        // let the failure of this create forget the pool that exists.
        if owned.contains_key(pool) {
            return Err(dbpool_core::Error::PoolExists(dbpool_core::clip(pool)));
        }
        if q.max_pools > 0 && owned.len() >= q.max_pools as usize {
            return Err(self.quotas.exceeded("max_pools", q.max_pools.into()));
        }
        let total: u64 = owned.values().map(|&c| u64::from(c)).sum();
        if q.max_connections > 0 && total + u64::from(connections) > q.max_connections.into() {
            return Err(self
                .quotas
                .exceeded("max_connections", q.max_connections.into()));
        }
        owned.insert(pool.to_string(), connections);
        Ok(())
    }

    /// Forgets `pool` (removed, or its creation failed); whether it was its own.
    pub fn remove_owned(&self, pool: &str) -> bool {
        self.owned.lock().remove(pool).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_come_from_pools_star_ownership_and_admin() {
        let config: TenantConfig = toml::from_str(
            "token_env = \"T\"\npools = { pg = \"write\", lite = \"read\", \"*\" = \"read\" }\n",
        )
        .unwrap();
        let t = Tenant::new("a", &config);
        assert_eq!(t.right("pg"), Some(Right::Write));
        assert_eq!(t.right("lite"), Some(Right::Read));
        assert_eq!(t.right("other"), Some(Right::Read), "from *");
        let narrow: TenantConfig =
            toml::from_str("token_env = \"T\"\npools = { pg = \"read\" }\n").unwrap();
        let n = Tenant::new("b", &narrow);
        assert_eq!(n.right("other"), None);
        n.reserve("mine", 4).unwrap();
        assert_eq!(n.right("mine"), Some(Right::Write));
        assert!(n.remove_owned("mine") && !n.remove_owned("mine"));
        assert_eq!(n.right("mine"), None);
        let quota: TenantConfig =
            toml::from_str("token_env = \"T\"\n[quotas]\nmax_pools = 2\nmax_connections = 10\n")
                .unwrap();
        let q = Tenant::new("q", &quota);
        q.reserve("a", 6).unwrap();
        let e = q.reserve("b", 5).unwrap_err();
        assert!(e.to_string().contains("max_connections (10)"), "{e}");
        q.reserve("b", 4).unwrap();
        assert!(matches!(
            q.reserve("b", 1),
            Err(dbpool_core::Error::PoolExists(_))
        ));
        assert!(q.owns("b"), "a second create of its pool keeps it its own");
        let e = q.reserve("c", 0).unwrap_err();
        assert!(e.to_string().contains("max_pools (2)"), "{e}");
        q.remove_owned("a");
        q.reserve("c", 6).unwrap();
        let admin: TenantConfig = toml::from_str("token_env = \"T\"\nadmin = true\n").unwrap();
        assert_eq!(Tenant::new("c", &admin).right("any"), Some(Right::Write));
    }
}
