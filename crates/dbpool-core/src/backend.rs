//! The object-safe `Backend` trait each database implements behind its own bb8 pool.
use crate::{Error, Executor, Param, Result, Transaction, TxOptions};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use futures::stream::BoxStream;
use std::sync::Arc;

/// Rows as a schema and a stream of record batches: a query's result (the schema first,
/// then batches as rows arrive) or the rows a bulk insert writes.
///
/// A query's stream owns its pooled connection; dropping it stops the read and returns
/// the connection to the pool.
pub struct QueryStream {
    /// Schema of every batch.
    pub schema: SchemaRef,
    /// Record batches of bounded size; an error ends the stream.
    pub batches: BoxStream<'static, Result<RecordBatch>>,
}

/// What DoPut does with the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertMode {
    /// The table must exist.
    #[default]
    Append,
    /// Create the table from the schema; it must not exist.
    Create,
    /// Drop the table if it exists, then create it.
    Replace,
}

/// The target of a bulk insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkInsert {
    /// Table name, optionally schema-qualified (`sales.orders`).
    pub table: String,
    /// What to do with the table.
    pub mode: InsertMode,
}

/// A table or view, as catalog calls list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// Schema (namespace) name; empty where the database has none.
    pub db_schema: String,
    /// Table name.
    pub name: String,
    /// `TABLE` or `VIEW`.
    pub kind: String,
}

/// One statement of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// SQL text with placeholders.
    pub sql: String,
    /// Bind parameters.
    pub params: Vec<Param>,
}

/// Outcome of one statement of a non-transactional batch.
#[derive(Debug, Clone)]
pub struct StatementResult {
    /// Position in the batch, from 0.
    pub index: usize,
    /// Rows affected, or why it failed.
    pub outcome: Result<u64>,
}

/// Outcomes of a batch, in order.
pub type BatchOutcome = Vec<StatementResult>;

/// Live numbers of a connection pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Open connections.
    pub size: u32,
    /// Idle open connections.
    pub idle: u32,
    /// Calls waiting for a connection.
    pub waiters: u32,
    /// Configured maximum.
    pub max_size: u32,
    /// Connections opened since the pool was created.
    pub connections_created: u64,
    /// Acquires that timed out since the pool was created.
    pub acquire_timeouts: u64,
    /// The pool's circuit breaker.
    pub circuit: CircuitState,
}

/// A pool's circuit breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go to the database.
    #[default]
    Closed,
    /// Calls fail fast after repeated connection failures.
    Open,
    /// One probe may try the database.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// Which server answers a pool's reads, for pools with backup URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Serving {
    /// The primary (the pool's `url`).
    #[default]
    Primary,
    /// Backup number n (1-based, in `backup_urls` order).
    Backup(usize),
    /// The primary is down and no backup has answered yet.
    None,
}

impl Serving {
    /// `primary`, `backup N` or `none`.
    pub fn name(self) -> String {
        match self {
            Serving::Primary => "primary".into(),
            Serving::Backup(n) => format!("backup {n}"),
            Serving::None => "none".into(),
        }
    }
}

/// Failover state of a pool with backup URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failover {
    /// The primary is down: reads go to a backup, writes are refused.
    pub degraded: bool,
    /// Who answers reads.
    pub serving: Serving,
}

impl PoolState {
    /// Connections checked out right now.
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// A database behind a connection pool, as the server sees it: the statement verbs of
/// `Executor` on a pooled connection, plus batches, transactions, catalog and state.
#[async_trait]
pub trait Backend: Executor + 'static {
    /// Which database this is.
    fn kind(&self) -> BackendKind;

    /// Runs statements on one connection. With `transaction` the batch is all-or-nothing
    /// and fails with `Error::BatchStatement`; without, each outcome is reported.
    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome>;

    /// Begins an interactive transaction on a connection of its own.
    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        let _ = options;
        Err(Error::Unsupported(format!(
            "transactions on {}",
            self.kind().name()
        )))
    }

    /// The catalog (database) name this pool connects to, for Flight SQL metadata.
    async fn catalog_name(&self) -> Result<String> {
        Err(Error::Unsupported(format!(
            "catalogs of {}",
            self.kind().name()
        )))
    }

    /// The schemas (namespaces) of the database, system schemas left out.
    async fn list_schemas(&self) -> Result<Vec<String>> {
        Err(Error::Unsupported(format!(
            "schemas of {}",
            self.kind().name()
        )))
    }

    /// The user tables and views of the database.
    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        Err(Error::Unsupported(format!(
            "tables of {}",
            self.kind().name()
        )))
    }

    /// The Arrow schema a table's rows would have.
    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        let _ = (db_schema, table);
        Err(Error::Unsupported(format!(
            "table schemas of {}",
            self.kind().name()
        )))
    }

    /// The primary key columns of a table, in key order.
    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        let _ = (db_schema, table);
        Err(Error::Unsupported(format!(
            "primary keys of {}",
            self.kind().name()
        )))
    }

    /// Opens (or borrows) a connection and runs a trivial statement.
    async fn health_check(&self) -> Result<()>;

    /// Pool size, idle and waiting counts.
    fn state(&self) -> PoolState;

    /// How long calls waited for a connection.
    fn acquire_wait(&self) -> crate::HistogramSnapshot {
        crate::HistogramSnapshot::default()
    }

    /// Failover state; `None` for a pool without backup URLs.
    fn failover(&self) -> Option<Failover> {
        None
    }
}

/// Builds backends from resolved pool configs; dbpool-backends provides the real one.
#[async_trait]
pub trait BackendFactory: Send + Sync + 'static {
    /// Creates the pool of one backend. Does not connect; the manager checks afterwards.
    async fn create(&self, pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>>;
}

/// Checks that a batch is not empty and every statement has SQL.
pub fn validate_statements(statements: &[Statement]) -> Result<()> {
    if statements.is_empty() {
        return Err(Error::invalid("statements", "the batch is empty"));
    }
    for (i, s) in statements.iter().enumerate() {
        if s.sql.trim().is_empty() {
            return Err(Error::invalid(format!("statements[{i}].sql"), "is empty"));
        }
    }
    Ok(())
}
