//! SQLite through rusqlite on the blocking pool, behind bb8 with our own manager.
mod bulk;
pub mod confine;
mod convert;
mod error;
mod manager;
mod meta;
mod query;
mod session;
mod threads;
mod tx;

pub use convert::ColType;
pub use manager::SqliteManager;
pub use threads::{ThreadBudget, DEFAULT_BLOCKING_THREADS};

use crate::exec::{batch::Outcomes, Catalog, Driver, PoolBackend, Session};
use crate::pool::{Conn, PoolHandle};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{
    BatchOutcome, BulkInsert, Error, Param, QueryStream, Result, Statement, TableRef, TxOptions,
};
use error::classify;
pub(crate) use error::sq;
use query::{describe, execute_on, start_query};
use rusqlite::{Connection, TransactionBehavior};
use session::{blocking, settle, still_open, SqliteSession};
use std::path::PathBuf;
use std::sync::Arc;

/// An SQLite database file behind a pool.
pub type SqliteBackend = PoolBackend<SqliteDriver>;

/// SQLite through rusqlite, statements on the blocking pool.
pub struct SqliteDriver {
    pool: PoolHandle<SqliteManager>,
    /// The pool's share of the blocking threads, given back when it is dropped.
    _threads: threads::Reservation,
}

/// The file path of a `sqlite://` URL: `sqlite:///abs/path.db` or `sqlite://rel/path.db`.
pub fn path_of(url: &str) -> Result<PathBuf> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| Error::invalid("url", "expected sqlite:///path/to/file.db"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err(Error::invalid("url", "the SQLite file path is empty"));
    }
    Ok(PathBuf::from(path))
}

impl SqliteDriver {
    /// Runs `f` with a pooled connection on the blocking pool; if the call goes away
    /// (deadline, cancel) the statement is interrupted and the connection goes back.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut s = Session::pooled(self.pool.acquire().await?);
        blocking(&mut s, move |c| settle(c, f(c))).await
    }
}

/// Runs the statements of a batch on `conn`, recording each outcome.
fn run_all(conn: &Connection, statements: &[Statement], out: &mut Outcomes) -> Result<()> {
    for (index, s) in statements.iter().enumerate() {
        out.record(index, execute_on(conn, &s.sql, &s.params))?;
    }
    Ok(())
}

impl SqliteDriver {
    /// Builds the driver and its pool; the file is created on first connect, its
    /// directory now. Its `max_connections` threads are reserved of `budget`, which the
    /// factory shares between a server's SQLite pools.
    pub fn with_budget(cfg: &ResolvedPool, budget: &Arc<ThreadBudget>) -> Result<Self> {
        let mut path = path_of(cfg.url.expose())?;
        let confine_to = cfg
            .settings
            .get(confine::CONFINE_SETTING)
            .map(PathBuf::from);
        if let Some(dir) = &confine_to {
            path = confine::confined_path(&path, dir).map_err(|why| Error::invalid("url", why))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::invalid(
                    "url",
                    format!("cannot create directory {}: {e}", dir.display()),
                )
            })?;
        }
        let threads = budget.reserve(cfg.options.max_connections)?;
        let manager = SqliteManager {
            path,
            busy_timeout: cfg.options.acquire_timeout(),
            confine_to,
        };
        Ok(SqliteDriver {
            pool: PoolHandle::new(manager, &cfg.options, classify),
            _threads: threads,
        })
    }
}

impl Driver for SqliteDriver {
    type Conn = Conn<SqliteManager>;
    type Pool = PoolHandle<SqliteManager>;
    const KIND: BackendKind = BackendKind::Sqlite;

    /// A pool with a thread budget of its own, sized for tokio's default blocking pool;
    /// the factory uses [`SqliteDriver::with_budget`] so a server's pools share one.
    fn open(_pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        Self::with_budget(cfg, &Arc::new(ThreadBudget::default()))
    }

    fn pool(&self) -> &PoolHandle<SqliteManager> {
        &self.pool
    }

    async fn query(
        &self,
        s: SqliteSession,
        sql: &str,
        params: Vec<Param>,
        batch_size: usize,
    ) -> Result<QueryStream> {
        start_query(s, sql, params, batch_size).await
    }

    /// Prepares the statement and runs nothing: a statement that returns no columns has
    /// an empty schema, others their declared column types (Utf8 for an expression), the
    /// schema they would stream without rows (`query::describe`).
    async fn schema(
        &self,
        mut s: SqliteSession,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<SchemaRef> {
        let (probe, n) = (sql.to_string(), params.len());
        blocking(&mut s, move |c| settle(c, describe(c, &probe, n))).await
    }

    async fn execute(&self, s: &mut SqliteSession, sql: &str, params: Vec<Param>) -> Result<u64> {
        let sql = sql.to_string();
        blocking(s, move |c| {
            if c.in_transaction() {
                // A transaction already ended runs nothing more.
                still_open(c)?;
            }
            settle(c, execute_on(c, &sql, &params))
        })
        .await
    }

    async fn bulk_insert(
        &self,
        s: SqliteSession,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        bulk::bulk_insert(s, target, rows).await
    }

    /// In one call on the blocking pool, IMMEDIATE when it is a transaction: the write
    /// lock is taken before the first statement, so none of them waits for it midway.
    async fn batch(&self, statements: Vec<Statement>, transaction: bool) -> Result<BatchOutcome> {
        let mut s = Session::pooled(self.pool.acquire().await?);
        if statements.iter().any(|st| Self::changes_session(&st.sql)) {
            s.mark_dirty();
        }
        blocking(&mut s, move |c| {
            let mut out = Outcomes::new(statements.len(), transaction);
            let r = if transaction {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sq)?;
                // Dropping `tx` on a failure rolls back.
                run_all(&tx, &statements, &mut out).and_then(|()| tx.commit().map_err(sq))
            } else {
                run_all(c, &statements, &mut out)
            };
            settle(c, r.map(|()| out.finish()))
        })
        .await
    }

    async fn begin(&self, s: &mut SqliteSession, options: TxOptions) -> Result<()> {
        tx::begin(s, options).await
    }

    async fn end(&self, s: &mut SqliteSession, commit: bool) -> Result<()> {
        tx::end(s, commit).await
    }

    fn abandon(conn: Conn<SqliteManager>) {
        tx::abandon(conn)
    }

    async fn health_check(&self) -> Result<()> {
        self.with_conn(|c| c.execute_batch("SELECT 1").map_err(sq))
            .await
    }

    fn catalog(&self) -> Option<&dyn Catalog> {
        Some(self)
    }
}

/// Following the ADBC SQLite driver, the catalog is `main` and the schema name is empty.
#[async_trait]
impl Catalog for SqliteDriver {
    async fn catalog_name(&self) -> Result<String> {
        Ok("main".to_string())
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        Ok(vec![String::new()])
    }

    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        self.with_conn(meta::list_tables).await
    }

    async fn table_schema(&self, _db_schema: &str, table: &str) -> Result<SchemaRef> {
        let s = Session::pooled(self.pool.acquire().await?);
        Ok(start_query(s, &meta::empty_select(table), vec![], 1)
            .await?
            .schema)
    }

    async fn primary_keys(&self, _db_schema: &str, table: &str) -> Result<Vec<String>> {
        let table = table.to_string();
        self.with_conn(move |c| meta::primary_keys(c, &table)).await
    }
}
