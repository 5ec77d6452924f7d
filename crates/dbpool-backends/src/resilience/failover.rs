//! Failover to backup servers: reads move to the first backup that works while the
//! primary is down and return when it is back; writes only ever go to the primary, so
//! while it is down the pool is in read-only degraded mode and refuses them clearly.
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool, Secret};
use dbpool_core::{
    Backend, Bare, BatchOutcome, BulkInsert, CircuitState, Error, Executor, Failover, Param,
    PoolState, QueryStream, Result, Serving, Statement, TableRef, Transaction, TxOptions,
    UnavailableCause,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What failover asks of a database kind that can have backups; each backend that
/// supports `backup_urls` provides one (PostgreSQL: `postgres::backup::READ_ONLY`).
#[derive(Debug, Clone, Copy)]
pub struct ReadOnlyBackup {
    /// The URL of a backup, changed so that server refuses every write on it (even one
    /// sent through Query, such as `INSERT … RETURNING`).
    pub url: fn(&str) -> String,
    /// Whether an error is a backup refusing a write, which the caller must read as the
    /// pool being in read-only degraded mode.
    pub refused_write: fn(&Error) -> bool,
}

/// The config of backup `n` (1-based): its URL opened read-only, and the primary's
/// options without idle connections kept open (a backup is connected when used).
pub fn backup_pool(pool: &ResolvedPool, n: usize, kind: &ReadOnlyBackup) -> Result<ResolvedPool> {
    let url = pool
        .backup_urls
        .get(n - 1)
        .ok_or_else(|| Error::Internal(format!("no backup {n}")))?;
    let mut backup = pool.clone();
    backup.url = Secret::new((kind.url)(url.expose()));
    backup.backup_urls = Vec::new();
    backup.options.min_connections = 0;
    Ok(backup)
}

/// A pool with a primary and backups, as one `Backend`.
pub struct FailoverBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool_id: String,
    primary: Arc<dyn Backend>,
    backups: Vec<Arc<dyn Backend>>,
    /// How often a background probe tries the primary while it is down.
    probe_every: Duration,
    /// Tells a backup's refusal of a write apart.
    refused_write: fn(&Error) -> bool,
    mode: Mutex<Mode>,
}

#[derive(Default)]
struct Mode {
    /// Why the primary is down (its last connection error); `None` while it is up.
    down: Option<Error>,
    serving: Serving,
    probing: bool,
}

impl FailoverBackend {
    /// Wraps `primary` and its `backups` (tried in order) for the pool `pool_id`; a down
    /// primary is probed every `probe_every` (the pool's breaker cool-down).
    pub fn new(
        pool_id: &str,
        primary: Arc<dyn Backend>,
        backups: Vec<Arc<dyn Backend>>,
        probe_every: Duration,
        kind: &ReadOnlyBackup,
    ) -> Self {
        FailoverBackend {
            inner: Arc::new(Inner {
                pool_id: pool_id.to_string(),
                primary,
                backups,
                probe_every: probe_every.max(Duration::from_millis(100)),
                refused_write: kind.refused_write,
                mode: Mutex::new(Mode::default()),
            }),
        }
    }

    /// Runs a read on the primary, or on the first backup that works while the primary
    /// is down; returns who answered.
    async fn read<'a, T: Send + 'a>(
        &'a self,
        call: impl Fn(Arc<dyn Backend>) -> BoxFuture<'a, Result<T>>,
    ) -> Result<(T, Serving)> {
        let inner = &self.inner;
        if !inner.skip_primary() {
            match call(inner.primary.clone()).await {
                Err(e) if e.is_connection_error() => inner.primary_down(&e),
                r => {
                    if r.is_ok() {
                        inner.primary_up();
                    }
                    return r.map(|v| (v, Serving::Primary));
                }
            }
        }
        let mut failures = Vec::new();
        // The cause of the whole is the last backup's: if its circuit is open, so is the
        // pool's for a retry's purpose.
        let mut cause = UnavailableCause::Connect;
        for (i, backup) in inner.backups.iter().enumerate() {
            let n = i + 1;
            match call(backup.clone()).await {
                Ok(v) => {
                    inner.served_by(Serving::Backup(n));
                    return Ok((v, Serving::Backup(n)));
                }
                Err(e) if e.is_connection_error() => {
                    cause = e.unavailable_cause().unwrap_or(UnavailableCause::Connect);
                    failures.push(format!("backup {n}: {}", Bare(&e)))
                }
                Err(e) => return Err(inner.backup_error(e, n)),
            }
        }
        inner.served_by(Serving::None);
        let message = format!(
            "primary and every backup unavailable (primary: {}; {})",
            Bare(&inner.cause()),
            failures.join("; ")
        );
        Err(Error::unavailable(cause, message))
    }

    /// Runs a write on the primary; a connection failure means read-only degraded mode.
    async fn write<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match call.await {
            Ok(v) => {
                self.inner.primary_up();
                Ok(v)
            }
            Err(e) if e.is_connection_error() => {
                self.inner.primary_down(&e);
                Err(self.inner.read_only(e, None))
            }
            Err(e) => Err(e),
        }
    }
}

impl Inner {
    /// Reads skip the primary while it is known down and its breaker fails calls fast
    /// anyway; the background probe (or a write, or a health check) finds it back.
    fn skip_primary(&self) -> bool {
        self.mode.lock().down.is_some() && self.primary.state().circuit != CircuitState::Closed
    }

    /// Why the primary is down.
    fn cause(&self) -> Error {
        let mode = self.mode.lock();
        mode.down
            .clone()
            .unwrap_or_else(|| Error::unavailable(UnavailableCause::Connect, "unknown"))
    }

    fn primary_down(self: &Arc<Self>, e: &Error) {
        let mut mode = self.mode.lock();
        if mode.down.is_none() {
            tracing::warn!(pool = %self.pool_id, error = %e, "primary unavailable: read-only degraded mode, reads go to the backups");
            mode.serving = Serving::None;
        }
        mode.down = Some(e.clone());
        if !mode.probing {
            mode.probing = true;
            tokio::spawn(probe(Arc::downgrade(self), self.probe_every));
        }
    }

    fn primary_up(&self) {
        let mut mode = self.mode.lock();
        if mode.down.take().is_some() {
            tracing::info!(pool = %self.pool_id, "primary is back: reads and writes go to it again");
        }
        mode.serving = Serving::Primary;
    }

    fn served_by(&self, serving: Serving) {
        let mut mode = self.mode.lock();
        if mode.down.is_some() {
            mode.serving = serving;
        }
    }

    /// The read-only error; `refused` is what a backup said when a write reached it.
    fn read_only(&self, cause: Error, refused: Option<(usize, &Error)>) -> Error {
        let reads = match (refused, self.mode.lock().serving) {
            (Some((n, e)), _) => {
                format!("backup {n} serves reads only and refused the statement: {e}")
            }
            (None, Serving::Backup(n)) => format!("reads are served by backup {n}"),
            (None, _) => "reads go to the first backup that answers".into(),
        };
        Error::ReadOnly {
            pool: self.pool_id.clone(),
            cause: Box::new(cause),
            reads,
        }
    }

    /// A backup's error as the caller sees it: a write it refused is the read-only error.
    fn backup_error(&self, e: Error, n: usize) -> Error {
        if (self.refused_write)(&e) {
            self.read_only(self.cause(), Some((n, &e)))
        } else {
            e
        }
    }
}

/// Tries the primary every `every` until it answers, the pool is dropped, or another
/// call found it back.
async fn probe(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        {
            let mut mode = inner.mode.lock();
            if mode.down.is_none() {
                mode.probing = false;
                return;
            }
        }
        if inner.primary.health_check().await.is_ok() {
            inner.primary_up();
            inner.mode.lock().probing = false;
            return;
        }
    }
}

/// Maps a backup's stream errors (a write refused mid-stream) to the read-only error.
fn backup_stream(
    inner: Arc<Inner>,
    n: usize,
    batches: BoxStream<'static, Result<RecordBatch>>,
) -> BoxStream<'static, Result<RecordBatch>> {
    batches
        .map(move |r| r.map_err(|e| inner.backup_error(e, n)))
        .boxed()
}

#[async_trait]
impl Executor for FailoverBackend {
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        let (q, serving) = self
            .read(|b| {
                let params = params.clone();
                Box::pin(async move { b.query(sql, params, batch_size).await })
            })
            .await?;
        Ok(match serving {
            Serving::Backup(n) => QueryStream {
                schema: q.schema,
                batches: backup_stream(self.inner.clone(), n, q.batches),
            },
            _ => q,
        })
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        self.read(|b| {
            let params = params.clone();
            Box::pin(async move { b.schema(sql, params).await })
        })
        .await
        .map(|(v, _)| v)
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        self.write(self.inner.primary.execute(sql, params)).await
    }

    async fn bulk_insert(&self, target: BulkInsert, rows: QueryStream) -> Result<u64> {
        self.write(self.inner.primary.bulk_insert(target, rows))
            .await
    }
}

#[async_trait]
impl Backend for FailoverBackend {
    fn kind(&self) -> BackendKind {
        self.inner.primary.kind()
    }

    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        self.write(self.inner.primary.execute_batch(statements, transaction))
            .await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        self.write(self.inner.primary.begin(options)).await
    }

    async fn catalog_name(&self) -> Result<String> {
        self.read(|b| Box::pin(async move { b.catalog_name().await }))
            .await
            .map(|(v, _)| v)
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        self.read(|b| Box::pin(async move { b.list_schemas().await }))
            .await
            .map(|(v, _)| v)
    }

    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        self.read(|b| Box::pin(async move { b.list_tables().await }))
            .await
            .map(|(v, _)| v)
    }

    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        self.read(|b| Box::pin(async move { b.table_schema(db_schema, table).await }))
            .await
            .map(|(v, _)| v)
    }

    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        self.read(|b| Box::pin(async move { b.primary_keys(db_schema, table).await }))
            .await
            .map(|(v, _)| v)
    }

    /// Checks the primary; while it is down, also finds the backup that serves reads so
    /// the pool's status says so.
    async fn health_check(&self) -> Result<()> {
        let inner = &self.inner;
        match inner.primary.health_check().await {
            Ok(()) => {
                inner.primary_up();
                Ok(())
            }
            Err(e) => {
                if e.is_connection_error() {
                    inner.primary_down(&e);
                    let mut serving = Serving::None;
                    for (i, b) in inner.backups.iter().enumerate() {
                        if b.health_check().await.is_ok() {
                            serving = Serving::Backup(i + 1);
                            break;
                        }
                    }
                    inner.served_by(serving);
                }
                Err(e)
            }
        }
    }

    fn state(&self) -> PoolState {
        self.inner.primary.state()
    }

    fn acquire_wait(&self) -> dbpool_core::HistogramSnapshot {
        self.inner.primary.acquire_wait()
    }

    fn failover(&self) -> Option<Failover> {
        let mode = self.inner.mode.lock();
        Some(Failover {
            degraded: mode.down.is_some(),
            serving: mode.serving,
        })
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
