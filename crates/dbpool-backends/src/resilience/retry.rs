//! Retry of reads: a query that failed before any row was sent because the connection
//! failed is tried twice more, with exponential backoff and jitter. Writes are never
//! retried (they may have run), nor is a call the breaker refused (meant to be fast).
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use dbpool_config::BackendKind;
use dbpool_core::{
    Backend, BatchOutcome, BulkInsert, Error, Executor, Failover, HistogramSnapshot, Param,
    PoolState, QueryStream, Result, Statement, TableRef, Transaction, TxOptions, UnavailableCause,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often and how patiently a read is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries after the first.
    pub retries: u32,
    /// Wait before the first retry, plus up to as much again of jitter.
    pub first: Duration,
    /// Each wait is this many times the one before.
    pub factor: u32,
}

impl Default for Backoff {
    /// Two retries, after 50–100 ms and 200–400 ms.
    fn default() -> Self {
        Backoff {
            retries: 2,
            first: Duration::from_millis(50),
            factor: 4,
        }
    }
}

/// Whether a failed read is worth another try: the connection failed, not the statement,
/// and no breaker refused it.
fn worth_retrying(e: &Error) -> bool {
    match e.unavailable_cause() {
        Some(UnavailableCause::Connect | UnavailableCause::Closed | UnavailableCause::Busy) => true,
        Some(UnavailableCause::CircuitOpen) | None => false,
    }
}

impl Backoff {
    /// Runs `f` until it succeeds, fails in a way not worth retrying, or the retries are
    /// spent. Waits on tokio's clock.
    pub async fn run<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.first;
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if attempt < self.retries && worth_retrying(&e) => {
                    let jitter = delay.mul_f64(fastrand::f64());
                    tracing::debug!(error = %e, attempt, "retrying a read");
                    tokio::time::sleep(delay + jitter).await;
                    delay *= self.factor;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }
}

/// A backend whose queries are retried by [`Backoff`]; every other call passes through.
pub struct Retrying {
    inner: Arc<dyn Backend>,
    backoff: Backoff,
}

impl Retrying {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, backoff: Backoff) -> Self {
        Retrying { inner, backoff }
    }
}

#[async_trait]
impl Executor for Retrying {
    /// Retried: the stream is returned once the schema is known, before any row is sent.
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        self.backoff
            .run(|| self.inner.query(sql, params.clone(), batch_size))
            .await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        self.inner.schema(sql, params).await
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        self.inner.execute(sql, params).await
    }

    async fn bulk_insert(&self, target: BulkInsert, rows: QueryStream) -> Result<u64> {
        self.inner.bulk_insert(target, rows).await
    }
}

#[async_trait]
impl Backend for Retrying {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        self.inner.execute_batch(statements, transaction).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        self.inner.begin(options).await
    }

    async fn catalog_name(&self) -> Result<String> {
        self.inner.catalog_name().await
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        self.inner.list_schemas().await
    }

    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        self.inner.list_tables().await
    }

    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        self.inner.table_schema(db_schema, table).await
    }

    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        self.inner.primary_keys(db_schema, table).await
    }

    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }

    fn state(&self) -> PoolState {
        self.inner.state()
    }

    fn acquire_wait(&self) -> HistogramSnapshot {
        self.inner.acquire_wait()
    }

    fn failover(&self) -> Option<Failover> {
        self.inner.failover()
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
