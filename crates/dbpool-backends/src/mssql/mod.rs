//! Microsoft SQL Server through tiberius 0.12 (rustls on ring) and a small bb8 manager:
//! `sp_executesql` with typed `@P1…` parameters, results decoded into Arrow and streamed
//! in bounded batches, transactions on pinned connections, bulk load (docs/mssql.md).
mod bulk;
mod config;
mod convert;
mod error;
mod manager;
mod meta;
mod params;
mod stream;
mod tx;

pub use convert::Kind;

use crate::pool::{Conn, PoolHandle};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, PoolOptions, ResolvedPool};
use dbpool_core::{
    Backend, BatchOutcome, BulkInsert, Error, Param, PoolState, QueryStream, Result, Statement,
    StatementResult, TableRef, Transaction, TxOptions,
};
use futures::stream::BoxStream;
use manager::Manager;
use params::bind;
use std::time::Duration;
use stream::{batch, execute_on, first_schema, rollback_if_open, start_query, timed, Held};

/// A transaction's pinned connection: tiberius needs `&mut`, the pin hands out `&`.
pub(crate) type TxConn = tokio::sync::Mutex<Conn<Manager>>;

/// A SQL Server pool.
pub struct MssqlBackend {
    pool: PoolHandle<Manager>,
    /// Client-side statement timeout (SQL Server has no server-side one).
    timeout: Option<Duration>,
    /// Rows read to settle a result's schema when describing it.
    describe_rows: usize,
}

impl MssqlBackend {
    /// Builds the pool from an `mssql://` URL or the `ado` setting; connects lazily.
    pub fn new(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        let settings = config::settings(pool_id, cfg)?;
        Ok(MssqlBackend {
            pool: PoolHandle::new(Manager::new(settings), &cfg.options, error::classify),
            timeout: PoolOptions::optional(cfg.options.statement_timeout_ms),
            describe_rows: cfg.options.batch_size as usize,
        })
    }

    async fn conn(&self) -> Result<Conn<Manager>> {
        self.pool.acquire().await
    }
}

#[async_trait]
impl Backend for MssqlBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Mssql
    }

    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        let params = bind(&params)?;
        let conn = Held::Pooled(Box::new(self.conn().await?));
        start_query(conn, sql.to_string(), params, batch_size, self.timeout).await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        // Run inside a transaction that is rolled back: a statement that writes does
        // not keep its writes, and the first batch settles decimal scales.
        let params = bind(&params)?;
        let mut conn = self.conn().await?;
        timed(self.timeout, async {
            batch(&mut conn, "BEGIN TRANSACTION").await?;
            let schema = first_schema(&mut conn, sql, &params, self.describe_rows).await;
            rollback_if_open(&mut conn).await?;
            schema
        })
        .await
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        let params = bind(&params)?;
        let mut conn = self.conn().await?;
        timed(self.timeout, execute_on(&mut conn, sql, &params)).await
    }

    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        dbpool_core::validate_statements(&statements)?;
        let bound = statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                bind(&s.params).map_err(|e| Error::BatchStatement {
                    index: i,
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.conn().await?;
        timed(self.timeout, async {
            if transaction {
                return all_or_nothing(&mut conn, &statements, &bound).await;
            }
            let mut out = Vec::with_capacity(statements.len());
            for (index, (s, p)) in statements.iter().zip(&bound).enumerate() {
                let outcome = execute_on(&mut conn, &s.sql, p).await;
                if matches!(&outcome, Err(e) if e.is_connection_error()) {
                    return Err(outcome.unwrap_err());
                }
                out.push(StatementResult { index, outcome });
            }
            Ok(out)
        })
        .await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        let conn = self.conn().await?;
        Ok(Box::new(
            tx::MssqlTx::begin(conn, options, self.describe_rows).await?,
        ))
    }

    async fn bulk_insert(
        &self,
        target: BulkInsert,
        schema: SchemaRef,
        batches: BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<u64> {
        let plan = bulk::Plan::new(&target, &schema)?;
        let mut conn = self.conn().await?;
        batch(&mut conn, "BEGIN TRANSACTION").await?;
        let r = bulk::load(&mut conn, &plan, batches).await;
        // A failed load may have left the connection mid-request: then closing it is
        // what rolls back.
        match &r {
            Ok(_) => batch(&mut conn, "COMMIT TRANSACTION").await?,
            Err(_) if !conn.broken => rollback_if_open(&mut conn).await?,
            Err(_) => {}
        }
        r
    }

    async fn catalog_name(&self) -> Result<String> {
        meta::catalog_name(&mut *self.conn().await?).await
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        meta::list_schemas(&mut *self.conn().await?).await
    }

    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        meta::list_tables(&mut *self.conn().await?).await
    }

    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        meta::table_schema(&mut *self.conn().await?, db_schema, table).await
    }

    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        meta::primary_keys(&mut *self.conn().await?, db_schema, table).await
    }

    async fn health_check(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        batch(&mut conn, "SELECT 1").await
    }

    fn state(&self) -> PoolState {
        self.pool.state()
    }
}

/// Runs the statements in one transaction: all of them, or on the first failure none
/// (`Error::BatchStatement` names it).
async fn all_or_nothing(
    conn: &mut manager::MssqlConn,
    statements: &[Statement],
    bound: &[Vec<params::Bound>],
) -> Result<BatchOutcome> {
    batch(conn, "BEGIN TRANSACTION").await?;
    let mut out = Vec::with_capacity(statements.len());
    for (index, (s, p)) in statements.iter().zip(bound).enumerate() {
        match execute_on(conn, &s.sql, p).await {
            Ok(n) => out.push(StatementResult {
                index,
                outcome: Ok(n),
            }),
            Err(e) => {
                // Some errors end the transaction themselves (XACT_ABORT, deadlocks).
                if !conn.broken {
                    rollback_if_open(conn).await?;
                }
                return Err(Error::BatchStatement {
                    index,
                    source: Box::new(e),
                });
            }
        }
    }
    batch(conn, "COMMIT TRANSACTION").await?;
    Ok(out)
}
