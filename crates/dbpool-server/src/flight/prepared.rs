//! Flight SQL prepared statements: each belongs to the client connection that created it,
//! which may hold at most `max_prepared_statements_per_connection`; one unused for
//! `prepared_statement_idle_timeout_ms` is closed, and so are all of a connection's when
//! it goes away. Handles are random, and only the owning connection can use one.
use dbpool_core::{Error, Param, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
// Tokio's clock, so that tests can pause and advance it.
use tokio::time::Instant;

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
    /// Whether it returns rows (a query) or not (DDL, an update, a script), as described
    /// when it was created: DoGet streams a query and executes the others.
    pub returns_rows: bool,
    /// Parameter rows bound by the last DoPut (empty: none bound).
    pub params: Vec<Vec<Param>>,
}

struct Slot {
    prepared: Prepared,
    last_used: Instant,
}

type Open = HashMap<ConnKey, HashMap<Vec<u8>, Slot>>;

/// Open prepared statements by owning connection, then by handle.
pub struct PreparedRegistry {
    max_per_conn: usize,
    idle: Duration,
    open: Mutex<Open>,
    /// How many are open, all connections together, for whoever watches.
    count: watch::Sender<usize>,
}

impl PreparedRegistry {
    /// An empty registry with these bounds.
    pub fn new(max_per_conn: usize, idle: Duration) -> Self {
        PreparedRegistry {
            max_per_conn,
            idle,
            open: Mutex::new(HashMap::new()),
            count: watch::Sender::new(0),
        }
    }

    /// Runs `f` on the open statements and publishes the count it leaves. A panic in
    /// `f` leaves a consistent map: no update spans several steps.
    fn update<R>(&self, f: impl FnOnce(&mut Open) -> R) -> R {
        let mut open = self.open.lock();
        let r = f(&mut open);
        let n = open.values().map(HashMap::len).sum();
        self.count
            .send_if_modified(|c| std::mem::replace(c, n) != n);
        r
    }

    fn expired(&self, s: &Slot, now: Instant) -> bool {
        now.saturating_duration_since(s.last_used) >= self.idle
    }

    /// Registers a statement for `owner`; returns its handle.
    pub fn open(&self, owner: ConnKey, p: Prepared) -> Result<Vec<u8>> {
        let handle = new_handle()?;
        let now = Instant::now();
        self.update(|open| {
            let mine = open.entry(owner).or_default();
            mine.retain(|_, s| !self.expired(s, now));
            if mine.len() >= self.max_per_conn {
                return Err(Error::ResourceExhausted(format!(
                    "this connection holds {} prepared statements, the most allowed \
                     (server.limits.max_prepared_statements_per_connection); close some",
                    mine.len()
                )));
            }
            let slot = Slot {
                prepared: p,
                last_used: now,
            };
            mine.insert(handle.clone(), slot);
            Ok(handle)
        })
    }

    /// Runs `f` on `owner`'s live statement behind `handle`, marking it used.
    fn with<R>(&self, owner: ConnKey, handle: &[u8], f: impl FnOnce(&mut Slot) -> R) -> Result<R> {
        let now = Instant::now();
        self.update(|open| {
            let mine = open.get_mut(&owner).ok_or_else(|| self.not_found())?;
            let slot = mine.get_mut(handle).ok_or_else(|| self.not_found())?;
            if self.expired(slot, now) {
                mine.remove(handle);
                return Err(self.expired_error());
            }
            slot.last_used = now;
            Ok(f(slot))
        })
    }

    /// The statement behind a handle.
    pub fn get(&self, owner: ConnKey, handle: &[u8]) -> Result<Prepared> {
        self.with(owner, handle, |s| s.prepared.clone())
    }

    /// Binds parameter rows.
    pub fn bind(&self, owner: ConnKey, handle: &[u8], params: Vec<Vec<Param>>) -> Result<()> {
        self.with(owner, handle, |s| s.prepared.params = params)
    }

    /// Forgets a handle.
    pub fn close(&self, owner: ConnKey, handle: &[u8]) -> Result<()> {
        self.update(|open| {
            let mine = open.get_mut(&owner).ok_or_else(|| self.not_found())?;
            mine.remove(handle).ok_or_else(|| self.not_found())?;
            if mine.is_empty() {
                open.remove(&owner);
            }
            Ok(())
        })
    }

    /// Closes every statement of a connection that went away; returns how many.
    pub fn owner_gone(&self, owner: ConnKey) -> usize {
        self.update(|open| open.remove(&owner).map_or(0, |m| m.len()))
    }

    /// Closes the statements unused for the idle timeout as of `now`; returns how many.
    pub fn reap_idle_at(&self, now: Instant) -> usize {
        self.update(|open| {
            let mut closed = 0;
            open.retain(|_, mine| {
                let before = mine.len();
                mine.retain(|_, s| !self.expired(s, now));
                closed += before - mine.len();
                !mine.is_empty()
            });
            closed
        })
    }

    /// Statements open, all connections together.
    pub fn len(&self) -> usize {
        *self.count.borrow()
    }

    /// The number of open statements, as it changes.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    fn not_found(&self) -> Error {
        Error::PreparedStatementNotFound(format!(
            "no such prepared statement on this connection: never created, closed, \
             unused for more than {} ms, or created on another connection",
            self.idle.as_millis()
        ))
    }

    fn expired_error(&self) -> Error {
        Error::PreparedStatementNotFound(format!(
            "the prepared statement was closed after {} ms unused \
             (server.limits.prepared_statement_idle_timeout_ms)",
            self.idle.as_millis()
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn stmt() -> Prepared {
        Prepared {
            pool_id: "p".into(),
            tx_id: String::new(),
            sql: "SELECT 1".into(),
            returns_rows: true,
            params: vec![],
        }
    }

    #[test]
    fn cap_is_per_connection_and_handles_are_owned() {
        let r = PreparedRegistry::new(2, Duration::from_secs(60));
        let (a, b): (ConnKey, ConnKey) = (1, 2);
        let h1 = r.open(a, stmt()).unwrap();
        r.open(a, stmt()).unwrap();
        let e = r.open(a, stmt()).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted(_)), "{e}");
        // Another connection is not affected by a's statements.
        let hb = r.open(b, stmt()).unwrap();
        assert_ne!(h1, hb);
        let e = r.get(b, &h1).unwrap_err();
        assert!(matches!(e, Error::PreparedStatementNotFound(_)), "{e}");
        assert!(r.close(b, &h1).is_err(), "b must not close a's handle");
        assert_eq!(r.get(a, &h1).unwrap().sql, "SELECT 1");
        r.close(a, &h1).unwrap();
        r.open(a, stmt()).unwrap();
        assert_eq!(r.owner_gone(a), 2);
        assert_eq!(r.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_statements_expire_and_use_keeps_them() {
        let r = PreparedRegistry::new(4, Duration::from_millis(1000));
        let a: ConnKey = 1;
        let mut count = r.watch();
        let used = r.open(a, stmt()).unwrap();
        let unused = r.open(a, stmt()).unwrap();
        assert_eq!(*count.borrow_and_update(), 2);
        advance(Duration::from_millis(600)).await;
        r.get(a, &used).unwrap();
        advance(Duration::from_millis(600)).await;
        let e = r.get(a, &unused).unwrap_err();
        assert!(matches!(e, Error::PreparedStatementNotFound(_)), "{e}");
        assert!(e.to_string().contains("closed after 1000 ms unused"), "{e}");
        assert_eq!(*count.borrow_and_update(), 1, "the expired one is gone");
        assert_eq!(
            r.reap_idle_at(Instant::now()),
            0,
            "the used one is 600 ms idle"
        );
        advance(Duration::from_millis(400)).await;
        assert_eq!(r.reap_idle_at(Instant::now()), 1);
        assert_eq!(r.len(), 0);
        assert!(count.has_changed().unwrap());
        assert!(r.get(a, &used).is_err());
        // Expired statements do not count against the cap.
        for _ in 0..4 {
            r.open(a, stmt()).unwrap();
        }
        advance(Duration::from_millis(500)).await;
        assert!(r.open(a, stmt()).is_err());
        advance(Duration::from_millis(500)).await;
        r.open(a, stmt()).unwrap();
        assert_eq!(r.len(), 1);
    }
}
