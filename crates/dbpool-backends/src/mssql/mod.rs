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

use crate::exec::{Catalog, Driver, PoolBackend, Session};
use crate::pool::{Conn, PoolHandle};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use dbpool_config::{BackendKind, PoolOptions, ResolvedPool};
use dbpool_core::{BulkInsert, Param, QueryStream, Result, TableRef, TxOptions};
use manager::Manager;
use params::bind;
use std::time::Duration;
use stream::{batch, execute_on, first_schema, rollback_if_open, start_query, timed};

/// A connection a SQL Server call runs on: pooled, or pinned to a transaction.
pub(crate) type MssqlSession = Session<Conn<Manager>>;

/// A SQL Server pool.
pub type MssqlBackend = PoolBackend<MssqlDriver>;

/// SQL Server through tiberius.
pub struct MssqlDriver {
    pool: PoolHandle<Manager>,
    /// Client-side statement timeout (SQL Server has no server-side one).
    timeout: Option<Duration>,
    /// Rows read to settle a result's schema when describing it.
    describe_rows: usize,
}

impl MssqlDriver {
    /// The statement timeout of a call on `s`: none inside an interactive transaction,
    /// whose connection must survive the call (closing it is what stops a statement).
    fn limit(&self, s: &MssqlSession) -> Option<Duration> {
        if s.interactive() {
            None
        } else {
            self.timeout
        }
    }

    async fn conn(&self) -> Result<Conn<Manager>> {
        self.pool.acquire().await
    }
}

impl Driver for MssqlDriver {
    type Conn = Conn<Manager>;
    type Pool = PoolHandle<Manager>;
    const KIND: BackendKind = BackendKind::Mssql;

    /// Builds the pool from an `mssql://` URL or the `ado` setting.
    fn open(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        let settings = config::settings(pool_id, cfg)?;
        Ok(MssqlDriver {
            pool: PoolHandle::new(Manager::new(settings), &cfg.options, error::classify),
            timeout: PoolOptions::optional(cfg.options.statement_timeout_ms),
            describe_rows: cfg.options.batch_size as usize,
        })
    }

    fn pool(&self) -> &PoolHandle<Manager> {
        &self.pool
    }

    async fn query(
        &self,
        s: MssqlSession,
        sql: &str,
        params: Vec<Param>,
        batch_size: usize,
    ) -> Result<QueryStream> {
        let params = bind(&params)?;
        let limit = self.limit(&s);
        start_query(s, sql.to_string(), params, batch_size, limit).await
    }

    /// Runs the statement inside a transaction (or, inside the caller's, a savepoint)
    /// that is rolled back: a statement that writes does not keep its writes, and the
    /// first batch settles decimal scales.
    async fn schema(
        &self,
        mut s: MssqlSession,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<SchemaRef> {
        let params = bind(&params)?;
        let (limit, in_tx) = (self.limit(&s), s.in_transaction());
        let conn = &mut *s;
        timed(limit, async {
            let open = if in_tx {
                "SAVE TRANSACTION dbpool_describe"
            } else {
                "BEGIN TRANSACTION"
            };
            batch(conn, open).await?;
            let schema = first_schema(conn, sql, &params, self.describe_rows).await;
            if in_tx {
                batch(conn, "ROLLBACK TRANSACTION dbpool_describe").await?;
            } else {
                rollback_if_open(conn).await?;
            }
            schema
        })
        .await
    }

    async fn execute(&self, s: &mut MssqlSession, sql: &str, params: Vec<Param>) -> Result<u64> {
        let params = bind(&params)?;
        timed(self.limit(s), execute_on(s, sql, &params)).await
    }

    /// In a transaction of its own, or inside the caller's behind a savepoint.
    async fn bulk_insert(
        &self,
        mut s: MssqlSession,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        let plan = bulk::Plan::new(&target, &rows.schema)?;
        let in_tx = s.in_transaction();
        let conn = &mut *s;
        let open = if in_tx {
            "SAVE TRANSACTION dbpool_bulk"
        } else {
            "BEGIN TRANSACTION"
        };
        batch(conn, open).await?;
        let r = bulk::load(conn, &plan, rows.batches).await;
        // A failed load may have left the connection mid-request: then closing it is
        // what rolls back.
        match (&r, in_tx) {
            (Ok(_), false) => batch(conn, "COMMIT TRANSACTION").await?,
            (Ok(_), true) => {}
            (Err(_), _) if conn.broken => {}
            (Err(_), false) => rollback_if_open(conn).await?,
            (Err(_), true) => batch(conn, "ROLLBACK TRANSACTION dbpool_bulk").await?,
        }
        r
    }

    async fn begin(&self, s: &mut MssqlSession, options: TxOptions) -> Result<()> {
        tx::begin(s, options).await
    }

    async fn end(&self, s: &mut MssqlSession, commit: bool) -> Result<()> {
        tx::end(s, commit).await
    }

    fn abandon(conn: Conn<Manager>) {
        tx::abandon(conn)
    }

    async fn health_check(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        batch(&mut conn, "SELECT 1").await
    }

    fn catalog(&self) -> Option<&dyn Catalog> {
        Some(self)
    }
}

#[async_trait]
impl Catalog for MssqlDriver {
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
}
