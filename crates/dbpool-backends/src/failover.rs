//! Failover to backup servers: reads move to the first backup that works while the
//! primary is down and return when it is back; writes only ever go to the primary, so
//! while it is down the pool is in read-only degraded mode and refuses them clearly.
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool, Secret};
use dbpool_core::{
    Backend, BatchOutcome, BulkInsert, CircuitState, Error, Executor, Failover, Param, PoolState,
    QueryStream, Result, Serving, Statement, TableRef, Transaction, TxOptions,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// PostgreSQL's SQLSTATE for "cannot execute … in a read-only transaction".
const READ_ONLY_SQLSTATE: &str = "25006";

/// The config of backup `n` (1-based): its URL, opened read-only, and the primary's
/// options without idle connections kept open (a backup is connected when used).
pub fn backup_pool(pool: &ResolvedPool, n: usize) -> Result<ResolvedPool> {
    let url = pool
        .backup_urls
        .get(n - 1)
        .ok_or_else(|| Error::Internal(format!("no backup {n}")))?;
    let url = match pool.kind {
        // Even a statement sent through Query (`INSERT … RETURNING`) cannot write there.
        BackendKind::Postgres => {
            with_pg_option(url.expose(), "-c default_transaction_read_only=on")
        }
        other => {
            return Err(Error::Unsupported(format!(
                "backup_urls on {} pools",
                other.name()
            )))
        }
    };
    let mut backup = pool.clone();
    backup.url = Secret::new(url);
    backup.backup_urls = Vec::new();
    backup.options.min_connections = 0;
    Ok(backup)
}

/// Adds `option` to the `options` parameter of a PostgreSQL URL, keeping the URL's own.
/// Spaces are written `%20`: tokio-postgres percent-decodes values but keeps `+`.
fn with_pg_option(url: &str, option: &str) -> String {
    let encoded = option.replace(' ', "%20").replace('=', "%3D");
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut found = false;
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some(("options", own)) => {
                found = true;
                format!("options={own}%20{encoded}")
            }
            _ => p.to_string(),
        })
        .collect();
    if !found {
        parts.push(format!("options={encoded}"));
    }
    format!("{base}?{}", parts.join("&"))
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
    mode: Mutex<Mode>,
}

#[derive(Default)]
struct Mode {
    /// Why the primary is down (its last connection error); `None` while it is up.
    down: Option<String>,
    serving: Serving,
    probing: bool,
}

/// The text of an error without the "database unavailable: " prefix, for nesting.
fn why(e: &Error) -> String {
    match e {
        Error::Unavailable(m) => m.clone(),
        other => other.to_string(),
    }
}

impl FailoverBackend {
    /// Wraps `primary` and its `backups` (tried in order) for the pool `pool_id`; a down
    /// primary is probed every `probe_every` (the pool's breaker cool-down).
    pub fn new(
        pool_id: &str,
        primary: Arc<dyn Backend>,
        backups: Vec<Arc<dyn Backend>>,
        probe_every: Duration,
    ) -> Self {
        FailoverBackend {
            inner: Arc::new(Inner {
                pool_id: pool_id.to_string(),
                primary,
                backups,
                probe_every: probe_every.max(Duration::from_millis(100)),
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
        for (i, backup) in inner.backups.iter().enumerate() {
            let n = i + 1;
            match call(backup.clone()).await {
                Ok(v) => {
                    inner.served_by(Serving::Backup(n));
                    return Ok((v, Serving::Backup(n)));
                }
                Err(e) if e.is_connection_error() => {
                    failures.push(format!("backup {n}: {}", why(&e)))
                }
                Err(e) => return Err(inner.backup_error(e, n)),
            }
        }
        inner.served_by(Serving::None);
        Err(Error::Unavailable(format!(
            "primary and every backup unavailable (primary: {}; {})",
            inner.cause(),
            failures.join("; ")
        )))
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
                Err(self.inner.read_only(why(&e), None))
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

    fn cause(&self) -> String {
        let mode = self.mode.lock();
        mode.down.clone().unwrap_or_else(|| "unknown".into())
    }

    fn primary_down(self: &Arc<Self>, e: &Error) {
        let mut mode = self.mode.lock();
        if mode.down.is_none() {
            tracing::warn!(pool = %self.pool_id, error = %e, "primary unavailable: read-only degraded mode, reads go to the backups");
            mode.serving = Serving::None;
        }
        mode.down = Some(why(e));
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
    fn read_only(&self, cause: String, refused: Option<(usize, &Error)>) -> Error {
        let reads = match (refused, self.mode.lock().serving) {
            (Some((n, e)), _) => {
                format!("backup {n} serves reads only and refused the statement: {e}")
            }
            (None, Serving::Backup(n)) => format!("reads are served by backup {n}"),
            (None, _) => "reads go to the first backup that answers".into(),
        };
        Error::ReadOnly {
            pool: self.pool_id.clone(),
            cause,
            reads,
        }
    }

    /// A backup's error as the caller sees it: a write it refused is the read-only error.
    fn backup_error(&self, e: Error, n: usize) -> Error {
        if e.db_code() == Some(READ_ONLY_SQLSTATE) {
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

    async fn bulk_insert(
        &self,
        target: BulkInsert,
        schema: SchemaRef,
        batches: BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<u64> {
        self.write(self.inner.primary.bulk_insert(target, schema, batches))
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
mod tests {
    use super::*;

    #[test]
    fn backups_open_read_only_and_keep_their_own_options() {
        let url = with_pg_option(
            "postgres://u:p@db/app",
            "-c default_transaction_read_only=on",
        );
        assert_eq!(
            url,
            "postgres://u:p@db/app?options=-c%20default_transaction_read_only%3Don"
        );
        let url = with_pg_option(
            "postgres://db/app?sslmode=disable&options=-c%20search_path%3Dx",
            "-c default_transaction_read_only=on",
        );
        assert_eq!(
            url,
            "postgres://db/app?sslmode=disable&options=-c%20search_path%3Dx%20-c%20default_transaction_read_only%3Don"
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn tokio_postgres_reads_the_options() {
        let pool = dbpool_config::PoolConfig {
            url: Some(Secret::new("postgres://db/app")),
            backup_urls: vec![Secret::new(
                "postgres://u:pw@db2/app?options=-c%20search_path%3Dx",
            )],
            options: dbpool_config::PoolOptions {
                min_connections: 2,
                ..Default::default()
            },
            ..Default::default()
        }
        .resolve("")
        .unwrap();
        let b = backup_pool(&pool, 1).unwrap();
        assert_eq!(b.options.min_connections, 0);
        assert!(b.backup_urls.is_empty());
        let pg: tokio_postgres::Config = b.url.expose().parse().unwrap();
        assert_eq!(
            pg.get_options(),
            Some("-c search_path=x -c default_transaction_read_only=on")
        );
        assert_eq!(pg.get_password(), Some(&b"pw"[..]));
    }
}
