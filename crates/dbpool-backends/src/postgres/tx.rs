//! Interactive PostgreSQL transactions on a pinned pooled connection.
use super::{execute_on, pg, start_query, AsClient, Manager};
use crate::pool::Conn;
use crate::tx::{spawn_cleanup, Guard, Pinned};
use async_trait::async_trait;
use dbpool_core::{Isolation, Param, QueryStream, Result, Transaction, TxOptions};

/// A transaction holding its connection until commit or rollback.
pub struct PgTx {
    conn: Pinned<Conn<Manager>>,
}

impl AsClient for Guard<Conn<Manager>> {
    fn client(&self) -> &tokio_postgres::Client {
        self
    }

    fn cache(&self) -> &super::StatementCache {
        (***self).cache()
    }

    fn may_rerun(&self) -> bool {
        false
    }
}

/// Rolls back a connection whose transaction was abandoned, then lets it go back.
fn abandon(conn: Conn<Manager>) {
    spawn_cleanup(async move {
        if let Err(e) = conn.batch_execute("ROLLBACK").await {
            tracing::warn!(error = %e, "rollback of an abandoned transaction failed");
        }
    });
}

/// The BEGIN statement for these options.
fn begin_sql(o: TxOptions) -> String {
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

impl PgTx {
    /// Begins on `conn`.
    pub async fn begin(conn: Conn<Manager>, options: TxOptions) -> Result<Self> {
        conn.batch_execute(&begin_sql(options)).await.map_err(pg)?;
        Ok(PgTx {
            conn: Pinned::new(conn, abandon),
        })
    }

    async fn end(&self, sql: &str) -> Result<()> {
        let conn = self.conn.take().await?;
        conn.batch_execute(sql).await.map_err(pg)
    }
}

#[async_trait]
impl Transaction for PgTx {
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        start_query(self.conn.lock().await?, sql, params, batch_size).await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<arrow::datatypes::SchemaRef> {
        let conn = self.conn.lock().await?;
        super::describe(&conn, sql, &params).await
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        let conn = self.conn.lock().await?;
        execute_on(conn.client(), conn.cache(), false, sql, &params).await
    }

    async fn commit(&self) -> Result<()> {
        self.end("COMMIT").await
    }

    async fn rollback(&self) -> Result<()> {
        self.end("ROLLBACK").await
    }
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
