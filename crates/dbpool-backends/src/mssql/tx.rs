//! Interactive SQL Server transactions on a pinned pooled connection.
use super::params::bind;
use super::stream::{batch, execute_on, first_schema, rollback_if_open, start_query, Held};
use super::{bulk, Manager, TxConn};
use crate::pool::Conn;
use crate::tx::{spawn_cleanup, Pinned};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_core::{
    BulkInsert, Error, Isolation, Param, QueryStream, Result, Transaction, TxOptions,
};
use futures::stream::BoxStream;

/// Restores the session default after a transaction that changed the isolation level
/// (the connection goes back to the pool; SQL Server keeps the level per session).
const RESET_ISOLATION: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// A transaction holding its connection until commit or rollback.
pub struct MssqlTx {
    conn: Pinned<TxConn>,
    isolated: bool,
    describe_rows: usize,
}

/// Rolls back a connection whose transaction was abandoned, then lets it go back.
fn abandon(conn: TxConn) {
    let mut conn = conn.into_inner();
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

impl MssqlTx {
    /// Begins on `conn`.
    pub async fn begin(mut conn: Conn<Manager>, options: TxOptions, rows: usize) -> Result<Self> {
        batch(&mut conn, &begin_sql(options)?).await?;
        Ok(MssqlTx {
            conn: Pinned::new(tokio::sync::Mutex::new(conn), abandon),
            isolated: options.isolation != Isolation::Default,
            describe_rows: rows,
        })
    }

    async fn end(&self, commit: bool) -> Result<()> {
        let mut conn = self.conn.take().await?.into_inner();
        if commit {
            batch(&mut conn, "COMMIT TRANSACTION").await?;
        } else {
            rollback_if_open(&mut conn).await?;
        }
        if self.isolated {
            batch(&mut conn, RESET_ISOLATION).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Transaction for MssqlTx {
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        let params = bind(&params)?;
        let held = Held::Pinned(self.conn.lock().await?);
        start_query(held, sql.to_string(), params, batch_size, None).await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        let params = bind(&params)?;
        let guard = self.conn.lock().await?;
        let mut conn = guard.lock().await;
        // A savepoint keeps the transaction's own work while undoing the statement's.
        batch(&mut conn, "SAVE TRANSACTION dbpool_describe").await?;
        let schema = first_schema(&mut conn, sql, &params, self.describe_rows).await;
        batch(&mut conn, "ROLLBACK TRANSACTION dbpool_describe").await?;
        schema
    }

    async fn bulk_insert(
        &self,
        target: BulkInsert,
        schema: SchemaRef,
        batches: BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<u64> {
        let plan = bulk::Plan::new(&target, &schema)?;
        let guard = self.conn.lock().await?;
        let mut conn = guard.lock().await;
        batch(&mut conn, "SAVE TRANSACTION dbpool_bulk").await?;
        let r = bulk::load(&mut conn, &plan, batches).await;
        if r.is_err() && !conn.broken {
            batch(&mut conn, "ROLLBACK TRANSACTION dbpool_bulk").await?;
        }
        r
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        let params = bind(&params)?;
        let guard = self.conn.lock().await?;
        let mut conn = guard.lock().await;
        execute_on(&mut conn, sql, &params).await
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
