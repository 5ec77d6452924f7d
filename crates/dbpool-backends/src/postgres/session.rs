//! A PostgreSQL connection with its own prepared-statement cache, and the bb8 manager
//! (bb8-postgres underneath) that opens them.
//!
//! A cached statement is bound and run in one round trip instead of two. PostgreSQL
//! re-plans cached statements after DDL by itself; the two cases it refuses — the
//! result type changed (`0A000` "cached plan must not change result type") or the
//! session deallocated the statement (`26000`) — evict the entry, and a call outside a
//! transaction prepares the statement anew and runs it again.
//!
//! Behind a transaction-mode pooler (PgBouncer, RDS Proxy, Supavisor) consecutive
//! transactions may run on different server connections, so a named statement can be
//! missing where it is bound. `prepared_statements = "unnamed"` parses every statement
//! unnamed in the round trip that binds and runs it; `auto` switches to that when it
//! sees a statement it just prepared go missing.
use super::tls::MakeRustls;
use super::{pg, schema_of};
use arrow::datatypes::SchemaRef;
use bb8_postgres::PostgresConnectionManager;
use dbpool_config::PreparedStatements;
use dbpool_core::{Error, Param, Result};
use hashlink::LruCache;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, Statement};

/// A client plus the statements prepared on it; derefs to the client.
pub struct PgConn {
    client: Client,
    cache: StatementCache,
    /// The pool's TLS connector, which a cancel request must use too.
    tls: MakeRustls,
}

impl std::ops::Deref for PgConn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl PgConn {
    /// The statements prepared on this connection.
    pub fn cache(&self) -> &StatementCache {
        &self.cache
    }

    /// The TLS connector the connection was opened with (for its cancel requests).
    pub fn tls(&self) -> &MakeRustls {
        &self.tls
    }
}

/// A prepared statement with its Arrow result schema, worked out once per statement.
#[derive(Clone)]
pub struct Prepared {
    /// The statement.
    pub stmt: Statement,
    /// Its result columns as Arrow fields.
    pub schema: SchemaRef,
}

/// Prepared statements by SQL text, least recently used evicted first; capacity 0
/// turns caching off. Shares the pool's statement mode.
pub struct StatementCache {
    statements: Option<Mutex<LruCache<String, Prepared>>>,
    mode: Arc<StatementMode>,
    /// Set while `describe_unnamed` holds a transaction open: a call dropped midway
    /// leaves it set, and the pool discards the connection instead of reusing it.
    in_describe: AtomicBool,
}

/// How one call runs its statement: bound to a named statement, or parsed unnamed in
/// the same round trip as its bind and execute.
pub enum Target<'s> {
    /// A named statement prepared on this connection.
    Named(Statement),
    /// The SQL text, for an unnamed statement.
    Unnamed(&'s str),
}

/// What a named attempt gave: the statement and the output, or the error and whether
/// the statement came from the cache (prepared by an earlier call).
type Attempt<T> = std::result::Result<(Prepared, T), (tokio_postgres::Error, bool)>;

impl StatementCache {
    /// A cache of `capacity` statements (0: none) under the pool's `mode`.
    pub fn new(capacity: usize, mode: Arc<StatementMode>) -> Self {
        StatementCache {
            statements: (capacity > 0).then(|| Mutex::new(LruCache::new(capacity))),
            mode,
            in_describe: AtomicBool::new(false),
        }
    }

    fn lru(&self) -> Option<MutexGuard<'_, LruCache<String, Prepared>>> {
        // A panic elsewhere while the lock was held leaves a cache that is still
        // consistent (every operation on it is one call): keep using it.
        let lock = self.statements.as_ref()?;
        Some(lock.lock())
    }

    fn get(&self, sql: &str) -> Option<Prepared> {
        self.lru()?.get(sql).cloned()
    }

    fn put(&self, sql: &str, prepared: &Prepared) {
        if let Some(mut lru) = self.lru() {
            lru.insert(sql.to_owned(), prepared.clone());
        }
    }

    /// Forgets what `error` shows to be stale: the one statement whose result type
    /// changed, or everything when a statement is missing on the server or a name is
    /// taken there. Returns which of the two it was.
    fn evict_stale(&self, sql: &str, error: &tokio_postgres::Error) -> Stale {
        let stale = Stale::of(error);
        match (stale, self.lru()) {
            (Stale::ResultType, Some(mut lru)) => {
                lru.remove(sql);
            }
            (Stale::Missing, Some(mut lru)) => lru.clear(),
            _ => {}
        }
        stale
    }

    /// Whether this pool runs unnamed statements now.
    pub fn unnamed(&self) -> bool {
        self.mode.unnamed()
    }

    /// The statement for `sql`, from the cache or prepared on `client` (and cached);
    /// `true` beside it when it came from the cache.
    async fn prepare_cached(
        &self,
        client: &impl GenericClient,
        sql: &str,
    ) -> std::result::Result<(Prepared, bool), tokio_postgres::Error> {
        if let Some(prepared) = self.get(sql) {
            return Ok((prepared, true));
        }
        let stmt = client.prepare(sql).await?;
        let prepared = Prepared {
            schema: schema_of(&stmt),
            stmt,
        };
        self.put(sql, &prepared);
        Ok((prepared, false))
    }

    /// The result schema of `sql` without a cached statement, for unnamed mode: a named
    /// statement prepared and closed inside one transaction (`in_transaction`: the
    /// caller's), so a pooler keeps both on the same server connection.
    pub async fn describe_unnamed(
        &self,
        client: &Client,
        sql: &str,
        in_transaction: bool,
    ) -> Result<SchemaRef> {
        check_sql(sql)?;
        if in_transaction {
            // Dropping the statement sends its Close, inside the caller's transaction.
            return Ok(schema_of(&client.prepare(sql).await.map_err(pg)?));
        }
        self.in_describe.store(true, Ordering::Relaxed);
        client.batch_execute("BEGIN").await.map_err(pg)?;
        // The statement is dropped at once: its Close goes out before the COMMIT.
        let described = client.prepare(sql).await.map(|stmt| schema_of(&stmt));
        let end = if described.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        client.batch_execute(end).await.map_err(pg)?;
        // The transaction is over either way: the connection is fit for reuse.
        self.in_describe.store(false, Ordering::Relaxed);
        described.map_err(pg)
    }

    /// Whether a describe was abandoned with its transaction open.
    fn abandoned(&self) -> bool {
        self.in_describe.load(Ordering::Relaxed)
    }

    /// The statement for `sql`, from the cache or prepared on `client` (and cached).
    pub async fn prepare(&self, client: &impl GenericClient, sql: &str) -> Result<Prepared> {
        check_sql(sql)?;
        Ok(self.prepare_cached(client, sql).await.map_err(pg)?.0)
    }

    /// One named attempt: prepare (or take from the cache), check the parameter count,
    /// run. A parameter count mismatch is the caller's error, returned as `Err(Ok(_))`.
    async fn attempt<'s, T, F, Fut>(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[Param],
        run: &F,
    ) -> std::result::Result<Attempt<T>, Error>
    where
        F: Fn(Target<'s>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    {
        let (prepared, cached) = match self.prepare_cached(client, sql).await {
            Ok(p) => p,
            Err(e) => return Ok(Err((e, false))),
        };
        check_params(&prepared.stmt, params)?;
        Ok(match run(Target::Named(prepared.stmt.clone())).await {
            Ok(out) => Ok((prepared, out)),
            Err(e) => Err((e, cached)),
        })
    }

    /// Runs `sql` with `run`: unnamed when the pool does, else on its cached named
    /// statement. A statement the error shows stale is evicted and, when `rerun` (not
    /// inside a transaction, which the error aborted), prepared anew and run once more.
    /// In `auto` mode a statement that is missing (or whose name is taken) again after
    /// that is run unnamed, and if that works the pool switches to unnamed statements.
    /// Returns the named statement it ran, if any, and what `run` gave.
    pub async fn run<'s, T, F, Fut>(
        &self,
        client: &impl GenericClient,
        sql: &'s str,
        params: &[Param],
        rerun: bool,
        run: F,
    ) -> Result<(Option<Prepared>, T)>
    where
        F: Fn(Target<'s>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    {
        check_sql(sql)?;
        if self.mode.unnamed() {
            return Ok((None, run(Target::Unnamed(sql)).await.map_err(pg)?));
        }
        let (e, cached) = match self.attempt(client, sql, params, &run).await? {
            Ok((prepared, out)) => return Ok((Some(prepared), out)),
            Err(failed) => failed,
        };
        let stale = self.evict_stale(sql, &e);
        if stale == Stale::No {
            return Err(pg(e));
        }
        if !rerun {
            // Inside a transaction: the error aborted it. A statement prepared by an
            // earlier call and now missing is what a transaction pooler does.
            if stale == Stale::Missing && cached {
                self.mode.detected();
            }
            return Err(pg(e));
        }
        // Prepared anew: heals a result type change or a session's DEALLOCATE ALL.
        let (e, _) = match self.attempt(client, sql, params, &run).await? {
            Ok((prepared, out)) => return Ok((Some(prepared), out)),
            Err(failed) => failed,
        };
        if Stale::of(&e) != Stale::Missing || !self.mode.auto() {
            self.evict_stale(sql, &e);
            return Err(pg(e));
        }
        self.evict_stale(sql, &e);
        // Missing again right after being prepared: unless the SQL itself names a
        // missing statement (`EXECUTE x`), which fails unnamed too, a pooler routed
        // the bind to another server connection.
        let out = run(Target::Unnamed(sql)).await.map_err(pg)?;
        self.mode.detected();
        Ok((None, out))
    }
}

/// Why a statement failed, as far as the cache is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// Not the cache's business.
    No,
    /// `0A000` "cached plan must not change result type".
    ResultType,
    /// `26000` the statement is gone, or `42P05` its name is taken on the server.
    Missing,
}

impl Stale {
    fn of(error: &tokio_postgres::Error) -> Stale {
        match error.code() {
            Some(c) if *c == SqlState::FEATURE_NOT_SUPPORTED => Stale::ResultType,
            Some(c)
                if *c == SqlState::INVALID_SQL_STATEMENT_NAME
                    || *c == SqlState::DUPLICATE_PSTATEMENT =>
            {
                Stale::Missing
            }
            _ => Stale::No,
        }
    }
}

fn check_sql(sql: &str) -> Result<()> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    Ok(())
}

fn check_params(stmt: &Statement, params: &[Param]) -> Result<()> {
    if stmt.params().len() != params.len() {
        return Err(Error::invalid(
            "params",
            format!(
                "the statement has {} placeholders but {} parameters were given",
                stmt.params().len(),
                params.len()
            ),
        ));
    }
    Ok(())
}

/// The pool's statement mode, shared by its connections: `auto` turns unnamed once.
#[derive(Debug)]
pub struct StatementMode {
    configured: PreparedStatements,
    detected: AtomicBool,
    pool_id: String,
}

impl StatementMode {
    /// The mode `configured` for pool `pool_id`.
    pub fn new(configured: PreparedStatements, pool_id: &str) -> Self {
        StatementMode {
            configured,
            detected: AtomicBool::new(false),
            pool_id: pool_id.to_owned(),
        }
    }

    fn auto(&self) -> bool {
        self.configured == PreparedStatements::Auto
    }

    /// Whether statements run unnamed now.
    pub fn unnamed(&self) -> bool {
        match self.configured {
            PreparedStatements::Named => false,
            PreparedStatements::Unnamed => true,
            PreparedStatements::Auto => self.detected.load(Ordering::Relaxed),
        }
    }

    /// `auto` saw a transaction pooler: unnamed from now on, logged once.
    fn detected(&self) {
        if self.auto() && !self.detected.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                pool = %self.pool_id,
                "prepared statements = auto: a statement this connection prepared is \
                 missing on the server (a transaction-mode pooler such as PgBouncer?); \
                 the pool uses unnamed statements from now on (set \
                 prepared_statements = \"unnamed\" to start that way)"
            );
        }
    }
}

/// bb8-postgres's manager, giving each connection its statement cache.
#[derive(Debug)]
pub struct PgManager {
    inner: PostgresConnectionManager<MakeRustls>,
    tls: MakeRustls,
    cache_size: usize,
    mode: Arc<StatementMode>,
}

impl PgManager {
    /// Connects with `config` over `tls` (its `ssl_mode` says whether TLS is tried);
    /// each connection caches up to `cache_size` statements and follows the pool's
    /// statement `mode`.
    pub fn new(
        config: tokio_postgres::Config,
        tls: MakeRustls,
        cache_size: usize,
        mode: Arc<StatementMode>,
    ) -> Self {
        PgManager {
            inner: PostgresConnectionManager::new(config, tls.clone()),
            tls,
            cache_size,
            mode,
        }
    }
}

impl bb8::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> std::result::Result<PgConn, Self::Error> {
        Ok(PgConn {
            client: self.inner.connect().await?,
            cache: StatementCache::new(self.cache_size, self.mode.clone()),
            tls: self.tls.clone(),
        })
    }

    async fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), Self::Error> {
        self.inner.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.inner.has_broken(&mut conn.client) || conn.cache.abandoned()
    }
}
