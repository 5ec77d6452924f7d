//! Flight SQL prepared statements: each belongs to the client connection that created it,
//! which may hold at most `max_prepared_statements_per_connection`; one unused for
//! `prepared_statement_idle_timeout_ms` is closed, and so are all of a connection's when
//! it goes away. Handles are random, and only the owning connection can use one.
use dbpool_core::{Error, Param, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use std::time::Instant;

/// Identifies a client connection: the never-reused id `conn` gives each one, the same
/// id the closed-connection channel reports.
pub type ConnKey = u64;

/// The connection the current call came on (0 outside a connection, e.g. in unit tests).
pub fn client_key() -> ConnKey {
    crate::conn::current().unwrap_or_default()
}

/// A prepared statement: where it runs, its SQL and the parameter rows bound last.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The pool it was prepared on.
    pub pool_id: String,
    /// The transaction it runs in (empty: none).
    pub tx_id: String,
    /// Its SQL.
    pub sql: String,
    /// Parameter rows bound by the last DoPut (empty: none bound).
    pub params: Vec<Vec<Param>>,
}

struct Slot {
    prepared: Prepared,
    last_used: Instant,
}

/// Open prepared statements by owning connection, then by handle.
pub struct PreparedRegistry {
    max_per_conn: usize,
    idle: Duration,
    open: Mutex<HashMap<ConnKey, HashMap<Vec<u8>, Slot>>>,
}

impl PreparedRegistry {
    /// An empty registry with these bounds.
    pub fn new(max_per_conn: usize, idle: Duration) -> Self {
        PreparedRegistry {
            max_per_conn,
            idle,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<ConnKey, HashMap<Vec<u8>, Slot>>> {
        // A panic while holding the lock leaves a consistent map (no multi-step updates).
        self.open.lock()
    }

    /// Registers a statement for `owner`; returns its handle.
    pub fn open(&self, owner: &ConnKey, p: Prepared) -> Result<Vec<u8>> {
        self.open_at(owner, p, Instant::now())
    }

    fn open_at(&self, owner: &ConnKey, p: Prepared, now: Instant) -> Result<Vec<u8>> {
        let handle = new_handle()?;
        let mut open = self.lock();
        let mine = open.entry(*owner).or_default();
        mine.retain(|_, s| now.duration_since(s.last_used) < self.idle);
        if mine.len() >= self.max_per_conn {
            return Err(Error::ResourceExhausted(format!(
                "this connection holds {} prepared statements, the most allowed \
                 (server.limits.max_prepared_statements_per_connection); close some",
                mine.len()
            )));
        }
        mine.insert(
            handle.clone(),
            Slot {
                prepared: p,
                last_used: now,
            },
        );
        Ok(handle)
    }

    /// Runs `f` on `owner`'s live statement behind `handle`, marking it used.
    fn with<R>(
        &self,
        owner: &ConnKey,
        handle: &[u8],
        now: Instant,
        f: impl FnOnce(&mut Slot) -> R,
    ) -> Result<R> {
        let mut open = self.lock();
        let mine = open.get_mut(owner).ok_or_else(|| self.not_found())?;
        let slot = mine.get_mut(handle).ok_or_else(|| self.not_found())?;
        if now.duration_since(slot.last_used) >= self.idle {
            mine.remove(handle);
            return Err(self.expired());
        }
        slot.last_used = now;
        Ok(f(slot))
    }

    /// The statement behind a handle.
    pub fn get(&self, owner: &ConnKey, handle: &[u8]) -> Result<Prepared> {
        self.with(owner, handle, Instant::now(), |s| s.prepared.clone())
    }

    /// Binds parameter rows.
    pub fn bind(&self, owner: &ConnKey, handle: &[u8], params: Vec<Vec<Param>>) -> Result<()> {
        self.with(owner, handle, Instant::now(), |s| {
            s.prepared.params = params
        })
    }

    /// Forgets a handle.
    pub fn close(&self, owner: &ConnKey, handle: &[u8]) -> Result<()> {
        let mut open = self.lock();
        let mine = open.get_mut(owner).ok_or_else(|| self.not_found())?;
        mine.remove(handle).ok_or_else(|| self.not_found())?;
        if mine.is_empty() {
            open.remove(owner);
        }
        Ok(())
    }

    /// Closes every statement of a connection that went away; returns how many.
    pub fn owner_gone(&self, owner: ConnKey) -> usize {
        self.lock().remove(&owner).map_or(0, |m| m.len())
    }

    /// Closes the statements unused for the idle timeout; returns how many.
    pub fn reap_idle(&self) -> usize {
        self.reap_at(Instant::now())
    }

    fn reap_at(&self, now: Instant) -> usize {
        let mut open = self.lock();
        let mut closed = 0;
        open.retain(|_, mine| {
            let before = mine.len();
            mine.retain(|_, s| now.duration_since(s.last_used) < self.idle);
            closed += before - mine.len();
            !mine.is_empty()
        });
        closed
    }

    /// Statements open, all connections together.
    pub fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn not_found(&self) -> Error {
        Error::invalid(
            "prepared_statement_handle",
            format!(
                "no such prepared statement on this connection: never created, closed, \
                 unused for more than {} ms, or created on another connection",
                self.idle.as_millis()
            ),
        )
    }

    fn expired(&self) -> Error {
        Error::invalid(
            "prepared_statement_handle",
            format!(
                "the prepared statement was closed after {} ms unused \
                 (server.limits.prepared_statement_idle_timeout_ms)",
                self.idle.as_millis()
            ),
        )
    }
}

/// 128 random bits from the OS: a handle seen by one client cannot be guessed by another
/// (and is checked against its owner anyway).
fn new_handle() -> Result<Vec<u8>> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits)
        .map_err(|e| Error::Internal(format!("no randomness for a statement handle: {e}")))?;
    let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("ps-{hex}").into_bytes())
}

/// Registries of the servers running in this process, by listen address.
static SERVERS: Mutex<Vec<(SocketAddr, Weak<PreparedRegistry>)>> = Mutex::new(Vec::new());

/// Makes a server's registry visible to [`open_prepared_statements`].
pub fn register_server(addr: SocketAddr, registry: &Arc<PreparedRegistry>) {
    let mut servers = SERVERS.lock();
    servers.retain(|(a, w)| w.strong_count() > 0 && *a != addr);
    servers.push((addr, Arc::downgrade(registry)));
}

/// Prepared statements open on the server listening at `addr` (None: no such server
/// running in this process). For tests that watch statements being freed.
#[doc(hidden)]
pub fn open_prepared_statements(addr: SocketAddr) -> Option<usize> {
    let servers = SERVERS.lock();
    servers
        .iter()
        .find(|(a, _)| *a == addr)
        .and_then(|(_, w)| w.upgrade())
        .map(|r| r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt() -> Prepared {
        Prepared {
            pool_id: "p".into(),
            tx_id: String::new(),
            sql: "SELECT 1".into(),
            params: vec![],
        }
    }

    #[test]
    fn cap_is_per_connection_and_handles_are_owned() {
        let r = PreparedRegistry::new(2, Duration::from_secs(60));
        let (a, b): (ConnKey, ConnKey) = (1, 2);
        let h1 = r.open(&a, stmt()).unwrap();
        r.open(&a, stmt()).unwrap();
        let e = r.open(&a, stmt()).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted(_)), "{e}");
        // Another connection is not affected by a's statements.
        let hb = r.open(&b, stmt()).unwrap();
        assert_ne!(h1, hb);
        assert!(r.get(&b, &h1).is_err(), "b must not use a's handle");
        assert!(r.close(&b, &h1).is_err(), "b must not close a's handle");
        assert_eq!(r.get(&a, &h1).unwrap().sql, "SELECT 1");
        r.close(&a, &h1).unwrap();
        r.open(&a, stmt()).unwrap();
        assert_eq!(r.owner_gone(a), 2);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn idle_statements_expire_and_use_keeps_them() {
        let r = PreparedRegistry::new(4, Duration::from_millis(1000));
        let a: ConnKey = 1;
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let used = r.open_at(&a, stmt(), t0).unwrap();
        let unused = r.open_at(&a, stmt(), t0).unwrap();
        r.with(&a, &used, at(600), |_| ()).unwrap();
        let e = r
            .with(&a, &unused, at(1200), |_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("closed after 1000 ms unused"), "{e}");
        assert_eq!(r.reap_at(at(1200)), 0, "the used one is 600 ms idle");
        assert_eq!(r.reap_at(at(1600)), 1);
        assert_eq!(r.len(), 0);
        assert!(r.get(&a, &used).is_err());
        // Expired statements do not count against the cap.
        for _ in 0..4 {
            r.open_at(&a, stmt(), t0).unwrap();
        }
        assert!(r.open_at(&a, stmt(), at(500)).is_err());
        r.open_at(&a, stmt(), at(1000)).unwrap();
        assert_eq!(r.len(), 1);
    }
}
