//! PostgreSQL through bb8-postgres: cached prepared statements, binary results decoded
//! straight into Arrow builders and streamed in bounded batches.
pub mod backup;
mod cancel;
mod convert;
mod copy;
mod error;
mod meta;
mod params;
mod query;
mod script;
mod session;
mod tx;

pub use convert::{arrow_type, Decoder};

use crate::pool::{Conn, PoolHandle};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{
    Backend, BatchOutcome, Error, Param, PoolState, QueryStream, Result, Statement,
    StatementResult, Transaction, TxOptions,
};
use params::PgParam;
use postgres_types::{ToSql, Type};
pub(crate) use query::start_query;
use session::{PgManager, StatementCache, StatementMode, Target};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::GenericClient;

type Manager = PgManager;

/// A PostgreSQL pool.
pub struct PgBackend {
    pool: PoolHandle<Manager>,
    mode: Arc<StatementMode>,
}

impl PgBackend {
    /// Builds the pool from a `postgres://` URL; connects lazily.
    pub fn new(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        let mut pg: tokio_postgres::Config = cfg
            .url
            .expose()
            .parse()
            .map_err(|e| Error::invalid("url", format!("not a PostgreSQL URL: {e}")))?;
        if pg.get_application_name().is_none() {
            pg.application_name(format!("dbpool:{pool_id}"));
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(cfg.options.acquire_timeout().min(Duration::from_secs(10)));
        }
        if cfg.options.statement_timeout_ms > 0 {
            // Appended: the URL's own `options` (e.g. `-c search_path=…`) are kept.
            let own = pg
                .get_options()
                .map(|o| format!("{o} "))
                .unwrap_or_default();
            pg.options(format!(
                "{own}-c statement_timeout={}",
                cfg.options.statement_timeout_ms
            ));
        }
        let mode = Arc::new(StatementMode::new(cfg.options.prepared_statements, pool_id));
        let cache_size = usize::try_from(cfg.options.statement_cache_size)
            .map_err(|_| Error::invalid("options.statement_cache_size", "too large"))?;
        let manager = PgManager::new(pg, cache_size, mode.clone());
        Ok(PgBackend {
            pool: PoolHandle::new(manager, &cfg.options, error::classify),
            mode,
        })
    }

    /// How statements run now: `named` or `unnamed` (`auto` has switched once it
    /// detected a transaction-mode pooler).
    pub fn statement_mode(&self) -> &'static str {
        if self.mode.unnamed() {
            "unnamed"
        } else {
            "named"
        }
    }
}

/// A connection a query can run on: pooled, or pinned to a transaction.
pub(crate) trait AsClient: Send + Sync + 'static {
    /// The tokio-postgres client.
    fn client(&self) -> &tokio_postgres::Client;
    /// The statements prepared on it.
    fn cache(&self) -> &StatementCache;
    /// Whether a statement that failed on a stale cache entry may simply run again:
    /// not inside a transaction, which the failure aborted.
    fn may_rerun(&self) -> bool;
    /// Whether a transaction is open on it (then it cannot run one of its own).
    fn in_transaction(&self) -> bool {
        !self.may_rerun()
    }
}

impl AsClient for Conn<Manager> {
    fn client(&self) -> &tokio_postgres::Client {
        self
    }

    fn cache(&self) -> &StatementCache {
        (**self).cache()
    }

    fn may_rerun(&self) -> bool {
        true
    }
}

pub(crate) fn pg(e: tokio_postgres::Error) -> Error {
    error::classify(&e)
}

pub(crate) fn schema_of(stmt: &tokio_postgres::Statement) -> SchemaRef {
    schema_of_columns(stmt.columns())
}

/// The Arrow schema of result columns.
pub(crate) fn schema_of_columns(columns: &[tokio_postgres::Column]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c.name(), arrow_type(c.type_(), c.type_modifier()), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Runs one statement; `rerun`: whether a stale cache entry may be prepared anew and
/// the statement run again (not inside a transaction).
pub(crate) async fn execute_on<'s>(
    client: &impl GenericClient,
    cache: &StatementCache,
    rerun: bool,
    sql: &'s str,
    params: &[Param],
) -> Result<u64> {
    if params.is_empty() && script::is_script(sql) {
        // Several statements: a script, run with the simple protocol. On a pooled
        // connection (`rerun`) it must not leave a transaction open.
        let r = client.batch_execute(sql).await.map_err(pg).map(|()| 0);
        return if rerun {
            tx::close_leftover(client, r).await
        } else {
            r
        };
    }
    let run = |target: Target<'s>| async move {
        match target {
            Target::Named(stmt) => client.execute_raw(&stmt, params.iter().map(PgParam)).await,
            Target::Unnamed(sql) => {
                let values: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let typed: Vec<(&(dyn ToSql + Sync), Type)> = values
                    .iter()
                    .map(|p| (p as &(dyn ToSql + Sync), p.unnamed_type()))
                    .collect();
                client.execute_typed(sql, &typed).await
            }
        }
    };
    Ok(cache.run(client, sql, params, rerun, run).await?.1)
}

/// The result schema of `sql` (prepared, not run); a multi-statement script has none.
pub(crate) async fn describe(
    conn: &impl AsClient,
    sql: &str,
    params: &[Param],
) -> Result<SchemaRef> {
    if params.is_empty() && script::is_script(sql) {
        return Ok(Arc::new(Schema::empty()));
    }
    if conn.cache().unnamed() {
        let in_tx = conn.in_transaction();
        return conn
            .cache()
            .describe_unnamed(conn.client(), sql, in_tx)
            .await;
    }
    // Parameters may be bound later (Flight SQL prepared statements): no count check.
    Ok(conn.cache().prepare(conn.client(), sql).await?.schema)
}

#[async_trait]
impl Backend for PgBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        start_query(self.pool.acquire().await?, sql, params, batch_size).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(
            tx::PgTx::begin(self.pool.acquire().await?, options).await?,
        ))
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        describe(&self.pool.acquire().await?, sql, &params).await
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        let conn = cancel::Cancelling::new(self.pool.acquire().await?);
        let r = execute_on(conn.client(), conn.inner().cache(), true, sql, &params).await;
        conn.done();
        r
    }

    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        dbpool_core::validate_statements(&statements)?;
        let mut conn = self.pool.acquire().await?;
        if transaction {
            let (client, cache) = conn.split();
            let tx = client.transaction().await.map_err(pg)?;
            let mut out = Vec::with_capacity(statements.len());
            for (index, s) in statements.iter().enumerate() {
                match execute_on(&tx, cache, false, &s.sql, &s.params).await {
                    Ok(n) => out.push(StatementResult {
                        index,
                        outcome: Ok(n),
                    }),
                    Err(e) => {
                        // Dropping `tx` rolls back; do it explicitly to report failures.
                        tx.rollback().await.map_err(pg)?;
                        return Err(Error::BatchStatement {
                            index,
                            source: Box::new(e),
                        });
                    }
                }
            }
            tx.commit().await.map_err(pg)?;
            return Ok(out);
        }
        let mut out = Vec::with_capacity(statements.len());
        for (index, s) in statements.iter().enumerate() {
            let outcome = execute_on(conn.client(), conn.cache(), true, &s.sql, &s.params).await;
            if matches!(&outcome, Err(e) if e.is_connection_error()) {
                return Err(outcome.unwrap_err());
            }
            out.push(StatementResult { index, outcome });
        }
        Ok(out)
    }

    async fn bulk_insert(
        &self,
        target: dbpool_core::BulkInsert,
        schema: SchemaRef,
        batches: futures::stream::BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<u64> {
        copy::bulk_insert(&self.pool, target, schema, batches).await
    }

    async fn catalog_name(&self) -> Result<String> {
        meta::catalog_name(&*self.pool.acquire().await?).await
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        meta::list_schemas(&*self.pool.acquire().await?).await
    }

    async fn list_tables(&self) -> Result<Vec<dbpool_core::TableRef>> {
        meta::list_tables(&*self.pool.acquire().await?).await
    }

    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        let sql = format!("SELECT * FROM {}", meta::qualified(db_schema, table));
        self.schema(&sql, vec![]).await
    }

    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        meta::primary_keys(&*self.pool.acquire().await?, db_schema, table).await
    }

    async fn health_check(&self) -> Result<()> {
        let conn = self.pool.acquire().await?;
        conn.simple_query("SELECT 1").await.map_err(pg)?;
        Ok(())
    }

    fn state(&self) -> PoolState {
        self.pool.state()
    }

    fn acquire_wait(&self) -> dbpool_core::HistogramSnapshot {
        self.pool.acquire_wait()
    }
}
