//! PostgreSQL transaction control (begin, a checked commit, the rollback of an abandoned
//! transaction), and the checks that catch a transaction open or ended behind the
//! daemon's back (issue 15).
use super::{pg, Manager};
use crate::exec::spawn_cleanup;
use crate::pool::Conn;
use dbpool_core::{Error, Isolation, Result, TxOptions};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, SimpleQueryMessage};

/// Whether the session is outside a transaction block, asked of the server in one
/// statement: tokio-postgres does not expose ReadyForQuery's status. A statement run
/// outside a block starts its own transaction, whose start time is the statement's;
/// inside a block the transaction began at least one round trip earlier. In an aborted
/// block the statement fails with SQLSTATE 25P02.
const OUTSIDE_BLOCK: &str = "SELECT transaction_timestamp() = statement_timestamp()";

/// The first column of the first row of a simple query's reply is `t`.
fn first_is_true(reply: &[SimpleQueryMessage]) -> bool {
    reply.iter().any(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
        _ => false,
    })
}

/// After a multi-statement script on a pooled connection (the simple protocol, where
/// SQL the statement guard did not catch could open a transaction): a transaction left
/// open is rolled back and the call fails, so nothing it wrote is kept or acknowledged.
/// Costs one round trip, only for scripts; single statements run through the extended
/// protocol, which refuses several commands in one.
pub(crate) async fn close_leftover<T>(client: &impl GenericClient, r: Result<T>) -> Result<T> {
    let open = match client.simple_query(OUTSIDE_BLOCK).await {
        Ok(reply) => !first_is_true(&reply),
        Err(e) if e.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) => true,
        // The connection itself failed: the pool drops it, which ends any transaction.
        Err(e) => return r.and(Err(pg(e))),
    };
    if !open {
        return r;
    }
    tracing::warn!("a script left a transaction open on a pooled PostgreSQL connection");
    client.batch_execute("ROLLBACK").await.map_err(pg)?;
    Err(Error::TransactionBroken(
        "the SQL left a transaction open on a pooled connection; it was rolled back and \
         nothing it wrote is kept. Use BeginTransaction, Commit and Rollback"
            .into(),
    ))
}

/// Rolls back a connection whose transaction was abandoned, then lets it go back.
pub(crate) fn abandon(conn: Conn<Manager>) {
    spawn_cleanup(async move {
        if let Err(e) = conn.batch_execute("ROLLBACK").await {
            tracing::warn!(error = %e, "rollback of an abandoned transaction failed");
        }
    });
}

/// The BEGIN statement for these options.
pub(crate) fn begin_sql(o: TxOptions) -> String {
    let level = match o.isolation {
        Isolation::Default => "",
        Isolation::ReadUncommitted => " ISOLATION LEVEL READ UNCOMMITTED",
        Isolation::ReadCommitted => " ISOLATION LEVEL READ COMMITTED",
        Isolation::RepeatableRead => " ISOLATION LEVEL REPEATABLE READ",
        Isolation::Serializable => " ISOLATION LEVEL SERIALIZABLE",
    };
    let mode = if o.read_only { " READ ONLY" } else { "" };
    format!("BEGIN{level}{mode}")
}

/// Commits only a transaction that is still open and not aborted. PostgreSQL answers
/// COMMIT in an aborted transaction with a ROLLBACK, and tokio-postgres reports that as
/// success: the check runs first, in the same round trip.
pub(crate) async fn commit_checked(conn: &Client) -> Result<()> {
    let checked = format!("{OUTSIDE_BLOCK}; COMMIT");
    let failed = match conn.simple_query(&checked).await {
        Ok(reply) if first_is_true(&reply) => {
            // The COMMIT ran outside any block: nothing of ours was open to commit.
            return Err(Error::TransactionBroken(
                "the transaction was ended by a statement inside it before Commit; \
                     statements after that ran outside it"
                    .into(),
            ));
        }
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    // The check failed (an aborted transaction) or the COMMIT did (a serialization
    // failure, a deferred constraint): make sure nothing stays open.
    if let Err(e) = conn.batch_execute("ROLLBACK").await {
        tracing::warn!(error = %e, "rollback after a failed commit failed");
    }
    if failed.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) {
        return Err(Error::TransactionBroken(
            "a statement failed inside the transaction, which aborted it: it was \
                 rolled back and nothing was committed (SQLSTATE 25P02)"
                .into(),
        ));
    }
    Err(pg(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_statements() {
        assert_eq!(begin_sql(TxOptions::default()), "BEGIN");
        let o = TxOptions {
            isolation: Isolation::Serializable,
            read_only: true,
        };
        assert_eq!(begin_sql(o), "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY");
    }
}
