//! An SQLite session on the blocking pool, and the checks after each call that catch a
//! transaction open or ended behind the daemon's back (issue 15).
use super::threads::{self, Watched};
use super::SqliteManager;
use crate::exec::Session;
use crate::pool::Conn;
use dbpool_core::{Error, Result};
use rusqlite::Connection;

/// A connection an SQLite call runs on: pooled, or pinned to a transaction.
pub(crate) type SqliteSession = Session<Conn<SqliteManager>>;

/// Something that holds an SQLite connection.
pub(crate) trait AsConn: Send + 'static {
    /// The rusqlite connection.
    fn conn(&self) -> &Connection;
}

impl AsConn for SqliteSession {
    fn conn(&self) -> &Connection {
        self
    }
}

/// Runs `f` with the session's connection on the blocking pool. Outside a transaction a
/// call that goes away (deadline, cancel) interrupts the statement; inside one it runs
/// to its end, since an interrupted write makes SQLite roll back the whole transaction.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &mut SqliteSession,
    f: impl FnOnce(&mut SqliteSession) -> Result<T> + Send + 'static,
) -> Result<T> {
    let mut lent = s.lend()?;
    let (_abandon, flag) = threads::abandon_on_drop();
    let (lent, r) = tokio::task::spawn_blocking(move || {
        if lent.in_transaction() {
            let r = f(&mut lent);
            return (lent, r);
        }
        let mut watched = Watched::new(lent, flag);
        let r = f(watched.get());
        (watched.into_inner(), r)
    })
    .await
    .map_err(|e| Error::Internal(format!("sqlite task: {e}")))?;
    s.restore(lent);
    r
}

/// The call's result, checked against the connection's transaction state: a pooled
/// connection must not keep a transaction, a transaction's must still have it.
pub(crate) fn settle<T>(s: &SqliteSession, r: Result<T>) -> Result<T> {
    if s.in_transaction() {
        still_open(s).and(r)
    } else {
        close_leftover(s, r)
    }
}

/// A pinned connection in autocommit mode has lost its transaction behind the daemon's
/// back: a statement inside it ended it (COMMIT/END/ROLLBACK the guard did not catch),
/// or SQLite rolled it back after an error (SQLITE_FULL, SQLITE_IOERR, an interrupt).
/// The call fails, and so does Commit: it must not answer OK for such a transaction.
pub(crate) fn still_open(conn: &Connection) -> Result<()> {
    if !conn.is_autocommit() {
        return Ok(());
    }
    Err(Error::TransactionBroken(
        "the transaction is no longer open: a statement inside it ended it, or SQLite \
         rolled it back after an error; statements since ran outside it. Roll back and \
         start again"
            .into(),
    ))
}

/// After a call on a pooled connection: a transaction it left open (SQL the statement
/// guard did not catch) is rolled back before the connection is reused, and the call
/// fails, so what it wrote is neither kept nor acknowledged.
pub(crate) fn close_leftover<T>(conn: &Connection, r: Result<T>) -> Result<T> {
    if conn.is_autocommit() {
        return r;
    }
    // If the rollback fails the pool's has_broken check drops the connection, which
    // rolls back too.
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::warn!(error = %e, "rollback of a transaction left open failed");
    }
    tracing::warn!("a call left a transaction open on a pooled SQLite connection; rolled back");
    Err(Error::TransactionBroken(
        "the SQL left a transaction open on a pooled connection; it was rolled back and \
         nothing it wrote is kept. Use BeginTransaction, Commit and Rollback"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_transaction_left_open_on_a_pooled_connection_is_rolled_back_and_fails_the_call() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a); BEGIN; INSERT INTO t VALUES (1)")
            .unwrap();
        let r = close_leftover(&c, Ok(1u64));
        assert!(matches!(r, Err(Error::TransactionBroken(_))), "{r:?}");
        assert!(c.is_autocommit());
        assert_eq!(rows(&c), 0);
        // Outside a transaction the call's own result passes through.
        assert_eq!(close_leftover(&c, Ok(7u64)).unwrap(), 7);
        let e = Error::invalid("sql", "x");
        assert!(matches!(
            close_leftover::<u64>(&c, Err(e)),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn a_pinned_connection_whose_transaction_ended_is_broken() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a PRIMARY KEY); BEGIN")
            .unwrap();
        assert!(still_open(&c).is_ok());
        c.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        // SQLite's own conflict clause rolls back the whole transaction.
        c.execute_batch("INSERT OR ROLLBACK INTO t VALUES (1)")
            .unwrap_err();
        assert!(matches!(still_open(&c), Err(Error::TransactionBroken(_))));
        assert_eq!(rows(&c), 0);
    }
}
