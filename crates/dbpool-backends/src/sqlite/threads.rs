//! SQLite's use of threads: statements run on tokio's blocking pool, which the whole
//! daemon shares (DNS lookups of the other backends' connects, file I/O). Each SQLite
//! pool reserves its `max_connections` threads of its factory's budget when it is
//! created, so SQLite pools together never fill that pool; and a statement whose caller
//! went away (deadline, cancel) is interrupted instead of running on.
use super::session::AsConn;
use dbpool_core::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// tokio's default `max_blocking_threads`: the limit of a runtime built without one.
pub const DEFAULT_BLOCKING_THREADS: usize = 512;

/// Blocking threads kept for everything but SQLite: an eighth of the pool, at most 64.
const RESERVED_MAX: usize = 64;

/// The blocking threads SQLite pools may hold together, shared by the pools of one
/// backend factory (one server).
#[derive(Debug)]
pub struct ThreadBudget {
    used: AtomicU32,
    limit: u32,
}

impl ThreadBudget {
    /// The budget on a runtime of `max_blocking_threads` (its builder's setting, tokio's
    /// default [`DEFAULT_BLOCKING_THREADS`]): all of them less an eighth, at most 64, kept
    /// for the rest of the daemon. 512 gives SQLite 448.
    pub fn for_blocking_threads(max_blocking_threads: usize) -> Self {
        let reserved = (max_blocking_threads / 8).min(RESERVED_MAX);
        let limit = max_blocking_threads - reserved;
        Self::new(u32::try_from(limit).unwrap_or(u32::MAX))
    }

    /// A budget of exactly `limit` threads.
    pub(crate) const fn new(limit: u32) -> Self {
        ThreadBudget {
            used: AtomicU32::new(0),
            limit,
        }
    }

    /// Threads SQLite pools may hold together.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Reserves `n` threads for a pool's life, or refuses with RESOURCE_EXHAUSTED: every
    /// SQLite statement holds a blocking thread and a pool runs at most `max_connections`
    /// at once, so reserving that many up front keeps one pool from taking the threads
    /// another pool (or a PostgreSQL connect resolving its host name) needs.
    pub(crate) fn reserve(self: &Arc<Self>, n: u32) -> Result<Reservation> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used.saturating_add(n) > self.limit {
                return Err(Error::ResourceExhausted(format!(
                    "SQLite pools together may hold at most {} connections (each statement \
                     runs on a thread of the daemon's shared blocking pool): {used} are \
                     taken, this pool asks for {n} (max_connections)",
                    self.limit
                )));
            }
            match self.used.compare_exchange_weak(
                used,
                used + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(Reservation {
                        budget: self.clone(),
                        n,
                    })
                }
                Err(now) => used = now,
            }
        }
    }
}

impl Default for ThreadBudget {
    /// The budget of a runtime with tokio's default blocking pool.
    fn default() -> Self {
        Self::for_blocking_threads(DEFAULT_BLOCKING_THREADS)
    }
}

/// Threads reserved by one pool; given back when the pool is dropped.
pub(crate) struct Reservation {
    budget: Arc<ThreadBudget>,
    n: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// Virtual machine instructions between two looks at the abandoned flag.
const PROGRESS_OPS: std::ffi::c_int = 1000;

/// Held by the call (or its result stream): dropping it marks the call abandoned, which
/// makes its statement stop with SQLITE_INTERRUPT at its next progress check.
pub(crate) struct AbandonOnDrop(Arc<AtomicBool>);

/// Creates the flag of one call: the guard for the async side and the flag for `guarded`.
pub(crate) fn abandon_on_drop() -> (AbandonOnDrop, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    (AbandonOnDrop(flag.clone()), flag)
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Owns a connection while a call's statement runs on it (on the blocking thread), with
/// a progress handler that interrupts the statement once the call is abandoned, also
/// when that happened before it started (a queued blocking task). Dropping it removes
/// the handler before the connection goes back to the pool (after a panic too), so the
/// flag of one call never reaches the next caller's statement.
pub(crate) struct Watched<C: AsConn>(Option<C>);

impl<C: AsConn> Watched<C> {
    /// Installs the handler on `conn` for the call whose flag is `abandoned`.
    pub(crate) fn new(conn: C, abandoned: Arc<AtomicBool>) -> Self {
        let handler = move || abandoned.load(Ordering::Relaxed);
        if let Err(e) = conn.conn().progress_handler(PROGRESS_OPS, Some(handler)) {
            tracing::warn!(error = %e, "SQLite progress handler not installed");
        }
        Watched(Some(conn))
    }

    /// The connection, pooled or pinned.
    pub(crate) fn get(&mut self) -> &mut C {
        self.0.as_mut().expect("present until dropped")
    }

    /// The connection back, handler removed.
    pub(crate) fn into_inner(mut self) -> C {
        let conn = self.0.take().expect("present until dropped");
        unwatch(&conn);
        conn
    }
}

fn unwatch(conn: &impl AsConn) {
    let _ = conn.conn().progress_handler(0, None::<fn() -> bool>);
}

impl<C: AsConn> Drop for Watched<C> {
    fn drop(&mut self) {
        if let Some(conn) = &self.0 {
            unwatch(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn the_budget_refuses_beyond_its_limit_and_frees_on_drop() {
        let b = Arc::new(ThreadBudget::new(10));
        let six = b.reserve(6).unwrap();
        let e = b.reserve(5).err().unwrap();
        assert!(matches!(&e, Error::ResourceExhausted(m) if m.contains("6 are taken")));
        let four = b.reserve(4).unwrap();
        drop(six);
        let again = b.reserve(6).unwrap();
        drop((four, again));
        assert_eq!(b.used.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_budget_follows_the_runtimes_blocking_threads() {
        assert_eq!(ThreadBudget::default().limit(), 448);
        assert_eq!(ThreadBudget::for_blocking_threads(1024).limit(), 960);
        assert_eq!(ThreadBudget::for_blocking_threads(64).limit(), 56);
        assert_eq!(ThreadBudget::for_blocking_threads(1).limit(), 1);
    }

    impl AsConn for Connection {
        fn conn(&self) -> &Connection {
            self
        }
    }

    const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                           SELECT count(*) FROM c";
    const COUNT: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                         WHERE x < 100000) SELECT count(*) FROM c";

    fn count(c: &Connection, sql: &str) -> rusqlite::Result<i64> {
        c.query_row(sql, [], |r| r.get(0))
    }

    #[test]
    fn an_abandoned_statement_is_interrupted() {
        let (guard, flag) = abandon_on_drop();
        // Abandoned before it starts (a queued task): it must stop, though it never ends.
        drop(guard);
        let mut w = Watched::new(Connection::open_in_memory().unwrap(), flag);
        let e = count(w.get(), ENDLESS).unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        // The handler goes with the call: the connection serves the next statement.
        let conn = w.into_inner();
        assert_eq!(count(&conn, COUNT).unwrap(), 100_000);
    }

    #[test]
    fn a_call_that_stays_runs_to_its_end() {
        let (guard, flag) = abandon_on_drop();
        let mut w = Watched::new(Connection::open_in_memory().unwrap(), flag);
        assert_eq!(count(w.get(), COUNT).unwrap(), 100_000);
        drop(guard);
    }
}
