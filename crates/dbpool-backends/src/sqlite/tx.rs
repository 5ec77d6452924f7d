//! SQLite transaction control on a session: begin (DEFERRED; SQLite is always
//! serializable), end, and the rollback of an abandoned transaction.
use super::session::{blocking, still_open, SqliteSession};
use super::{sq, SqliteManager};
use crate::pool::Conn;
use dbpool_core::{Error, Isolation, Result, TxOptions};

/// Statements that end a transaction and undo `query_only`.
fn end_sql(commit: bool) -> &'static str {
    if commit {
        "COMMIT; PRAGMA query_only = OFF;"
    } else {
        "ROLLBACK; PRAGMA query_only = OFF;"
    }
}

/// Rolls back a connection whose transaction was abandoned, then lets it go back. A
/// call dropped while its end ran may find the transaction over already.
pub(crate) fn abandon(conn: Conn<SqliteManager>) {
    let rollback = move || {
        let sql = if conn.is_autocommit() {
            "PRAGMA query_only = OFF;"
        } else {
            end_sql(false)
        };
        if let Err(e) = conn.execute_batch(sql) {
            tracing::warn!(error = %e, "rollback of an abandoned transaction failed");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => drop(h.spawn_blocking(rollback)),
        Err(_) => rollback(),
    }
}

/// Begins on `s`, DEFERRED: the write lock is taken at the first write, so an idle
/// session (ADBC keeps one open with autocommit off) does not block other writers.
pub(crate) async fn begin(s: &mut SqliteSession, options: TxOptions) -> Result<()> {
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
    blocking(s, move |c| c.execute_batch(sql).map_err(sq)).await
}

/// Commits or rolls back the transaction on `s`; the connection goes back outside any
/// transaction and with `query_only` off.
pub(crate) async fn end(s: &mut SqliteSession, commit: bool) -> Result<()> {
    blocking(s, move |conn| {
        if let Err(broken) = still_open(conn) {
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
