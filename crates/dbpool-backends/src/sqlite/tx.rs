//! Interactive SQLite transactions on a pinned connection (SQLite is always serializable).
use super::{execute_on, sq, start_query, AsConn, SqliteManager};
use crate::pool::Conn;
use crate::tx::{Guard, Pinned};
use async_trait::async_trait;
use dbpool_core::{Error, Isolation, Param, QueryStream, Result, Transaction, TxOptions};
use rusqlite::Connection;

/// A transaction holding its connection until commit or rollback.
pub struct SqliteTx {
    conn: Pinned<Conn<SqliteManager>>,
}

impl AsConn for Guard<Conn<SqliteManager>> {
    const INTERRUPTIBLE: bool = false;

    fn conn(&self) -> &rusqlite::Connection {
        self
    }

    fn settle<T>(&self, r: Result<T>) -> Result<T> {
        still_open(self).and(r)
    }
}

/// A pinned connection in autocommit mode has lost its transaction behind the daemon's
/// back: a statement inside it ended it (COMMIT/END/ROLLBACK the guard did not catch),
/// or SQLite rolled it back after an error (SQLITE_FULL, SQLITE_IOERR, an interrupt).
/// The call fails, and so does Commit: it must not answer OK for such a transaction.
fn still_open(conn: &Connection) -> Result<()> {
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

/// Statements that end a transaction and undo `query_only`.
fn end_sql(commit: bool) -> &'static str {
    if commit {
        "COMMIT; PRAGMA query_only = OFF;"
    } else {
        "ROLLBACK; PRAGMA query_only = OFF;"
    }
}

/// Rolls back a connection whose transaction was abandoned, then lets it go back.
fn abandon(conn: Conn<SqliteManager>) {
    let rollback = move || {
        if let Err(e) = conn.execute_batch(end_sql(false)) {
            tracing::warn!(error = %e, "rollback of an abandoned transaction failed");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => drop(h.spawn_blocking(rollback)),
        Err(_) => rollback(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("sqlite task: {e}")))?
}

impl SqliteTx {
    /// Begins on `conn`, DEFERRED: the write lock is taken at the first write, so an idle
    /// session (ADBC keeps one open with autocommit off) does not block other writers.
    pub async fn begin(conn: Conn<SqliteManager>, options: TxOptions) -> Result<Self> {
        if !matches!(
            options.isolation,
            Isolation::Default | Isolation::Serializable
        ) {
            return Err(Error::invalid(
                "isolation",
                "SQLite transactions are always SERIALIZABLE; ask for that or the default",
            ));
        }
        let sql = if options.read_only {
            "PRAGMA query_only = ON; BEGIN DEFERRED;"
        } else {
            "BEGIN DEFERRED;"
        };
        let conn = blocking(move || conn.execute_batch(sql).map(|_| conn).map_err(sq)).await?;
        Ok(SqliteTx {
            conn: Pinned::new(conn, abandon),
        })
    }

    async fn end(&self, commit: bool) -> Result<()> {
        let conn = self.conn.take().await?;
        blocking(move || {
            if let Err(broken) = still_open(&conn) {
                // Nothing to end; undo `query_only` before the connection goes back.
                conn.execute_batch("PRAGMA query_only = OFF;").map_err(sq)?;
                return Err(broken);
            }
            conn.execute_batch(end_sql(commit)).map_err(|e| {
                // A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open: close it
                // before the connection goes back to the pool.
                let _ = conn.execute_batch(end_sql(false));
                sq(e)
            })
        })
        .await
    }
}

#[async_trait]
impl Transaction for SqliteTx {
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        start_query(self.conn.lock().await?, sql, params, batch_size).await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<arrow::datatypes::SchemaRef> {
        let conn = self.conn.lock().await?;
        let (probe, n) = (sql.to_string(), params.len());
        let (conn, described) = blocking(move || {
            let d = super::describe(conn.conn(), &probe, n)?;
            Ok((conn, d))
        })
        .await?;
        match described {
            super::Described::Known(schema) => Ok(schema),
            super::Described::Run => Ok(start_query(conn, sql, params, 1).await?.schema),
        }
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        let conn = self.conn.lock().await?;
        let sql = sql.to_string();
        blocking(move || {
            // Checked before too: a transaction already ended runs nothing more.
            still_open(&conn)?;
            conn.settle(execute_on(conn.conn(), &sql, &params))
        })
        .await
    }

    async fn commit(&self) -> Result<()> {
        self.end(true).await
    }

    async fn rollback(&self) -> Result<()> {
        self.end(false).await
    }
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
