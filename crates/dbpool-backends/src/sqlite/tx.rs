//! Interactive SQLite transactions on a pinned connection (SQLite is always serializable).
use super::{execute_on, sq, start_query, AsConn, SqliteManager};
use crate::pool::Conn;
use crate::tx::{Guard, Pinned};
use async_trait::async_trait;
use dbpool_core::{Error, Isolation, Param, QueryStream, Result, Transaction, TxOptions};

/// A transaction holding its connection until commit or rollback.
pub struct SqliteTx {
    conn: Pinned<Conn<SqliteManager>>,
}

impl AsConn for Guard<Conn<SqliteManager>> {
    const INTERRUPTIBLE: bool = false;

    fn conn(&self) -> &rusqlite::Connection {
        self
    }
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
        blocking(move || execute_on(conn.conn(), &sql, &params)).await
    }

    async fn commit(&self) -> Result<()> {
        self.end(true).await
    }

    async fn rollback(&self) -> Result<()> {
        self.end(false).await
    }
}
