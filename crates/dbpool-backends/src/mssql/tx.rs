//! SQL Server transaction control: the BEGIN for an isolation level, the end that
//! restores the session's default level, and the rollback of an abandoned transaction.
use super::stream::{batch, rollback_if_open};
use super::{Manager, MssqlSession};
use crate::exec::spawn_cleanup;
use crate::pool::Conn;
use dbpool_core::{Error, Isolation, Result, TxOptions};

/// Restores the session default after a transaction that changed the isolation level
/// (the connection goes back to the pool; SQL Server keeps the level per session).
const RESET_ISOLATION: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Rolls back a connection whose transaction was abandoned, then lets it go back.
pub(crate) fn abandon(mut conn: Conn<Manager>) {
    spawn_cleanup(async move {
        let r = match rollback_if_open(&mut conn).await {
            Ok(()) => batch(&mut conn, RESET_ISOLATION).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "rollback of an abandoned transaction failed");
        }
    });
}

/// The statements that begin a transaction with these options.
fn begin_sql(o: TxOptions) -> Result<String> {
    if o.read_only {
        return Err(Error::Unsupported(
            "read-only transactions on SQL Server (it has none; use a login with read \
             permissions only, or ApplicationIntent=ReadOnly for a replica)"
                .into(),
        ));
    }
    let level = match o.isolation {
        Isolation::Default => "",
        Isolation::ReadUncommitted => "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; ",
        Isolation::ReadCommitted => "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; ",
        Isolation::RepeatableRead => "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; ",
        Isolation::Serializable => "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; ",
    };
    Ok(format!("{level}BEGIN TRANSACTION"))
}

/// Begins on `s`; a level other than the default is reset when the transaction ends.
pub(crate) async fn begin(s: &mut MssqlSession, options: TxOptions) -> Result<()> {
    batch(s, &begin_sql(options)?).await?;
    s.isolated = options.isolation != Isolation::Default;
    Ok(())
}

/// Commits or rolls back. A batch's connection left mid-answer (a statement timed out)
/// is not rolled back here: it is closed when it goes back, which rolls back.
pub(crate) async fn end(s: &mut MssqlSession, commit: bool) -> Result<()> {
    let abandoned_batch = s.broken && !s.interactive();
    let conn = &mut **s;
    if commit {
        batch(conn, "COMMIT TRANSACTION").await?;
    } else if !abandoned_batch {
        rollback_if_open(conn).await?;
    }
    if std::mem::take(&mut conn.isolated) {
        batch(conn, RESET_ISOLATION).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_statements() {
        assert_eq!(
            begin_sql(TxOptions::default()).unwrap(),
            "BEGIN TRANSACTION"
        );
        let o = TxOptions {
            isolation: Isolation::Serializable,
            read_only: false,
        };
        assert_eq!(
            begin_sql(o).unwrap(),
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; BEGIN TRANSACTION"
        );
        let ro = TxOptions {
            read_only: true,
            ..Default::default()
        };
        assert!(matches!(begin_sql(ro), Err(Error::Unsupported(_))));
    }
}
