//! A PostgreSQL connection with its own prepared-statement cache, and the bb8 manager
//! (bb8-postgres underneath) that opens them.
//!
//! A cached statement is bound and run in one round trip instead of two. PostgreSQL
//! re-plans cached statements after DDL by itself; the two cases it refuses — the
//! result type changed (`0A000` "cached plan must not change result type") or the
//! session deallocated the statement (`26000`) — evict the entry, and a call outside a
//! transaction prepares the statement anew and runs it again.
use super::{pg, schema_of};
use arrow::datatypes::SchemaRef;
use bb8_postgres::PostgresConnectionManager;
use dbpool_core::{Error, Param, Result};
use hashlink::LruCache;
use std::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, NoTls, Statement};

/// A client plus the statements prepared on it; derefs to the client.
pub struct PgConn {
    client: Client,
    cache: StatementCache,
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

    /// The client, mutably (for a transaction), beside the cache.
    pub fn split(&mut self) -> (&mut Client, &StatementCache) {
        (&mut self.client, &self.cache)
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
/// turns caching off.
pub struct StatementCache {
    statements: Option<Mutex<LruCache<String, Prepared>>>,
}

impl StatementCache {
    /// A cache of `capacity` statements (0: none).
    pub fn new(capacity: usize) -> Self {
        StatementCache {
            statements: (capacity > 0).then(|| Mutex::new(LruCache::new(capacity))),
        }
    }

    fn get(&self, sql: &str) -> Option<Prepared> {
        let mut lru = self.statements.as_ref()?.lock().expect("cache lock");
        lru.get(sql).cloned()
    }

    fn put(&self, sql: &str, prepared: &Prepared) {
        if let Some(lru) = &self.statements {
            lru.lock()
                .expect("cache lock")
                .insert(sql.to_owned(), prepared.clone());
        }
    }

    /// Forgets what `error` shows to be stale: the one statement whose result type
    /// changed, or everything when the session's statements were deallocated. Returns
    /// whether anything was stale.
    fn evict_stale(&self, sql: &str, error: &tokio_postgres::Error) -> bool {
        let Some(lru) = &self.statements else {
            return false;
        };
        match error.code() {
            Some(c) if *c == SqlState::FEATURE_NOT_SUPPORTED => {
                lru.lock().expect("cache lock").remove(sql);
                true
            }
            Some(c) if *c == SqlState::INVALID_SQL_STATEMENT_NAME => {
                lru.lock().expect("cache lock").clear();
                true
            }
            _ => false,
        }
    }

    /// The statement for `sql`, from the cache or prepared on `client` (and cached).
    pub async fn prepare(&self, client: &impl GenericClient, sql: &str) -> Result<Prepared> {
        if sql.trim().is_empty() {
            return Err(Error::invalid("sql", "is empty"));
        }
        if let Some(prepared) = self.get(sql) {
            return Ok(prepared);
        }
        let stmt = client.prepare(sql).await.map_err(pg)?;
        let prepared = Prepared {
            schema: schema_of(&stmt),
            stmt,
        };
        self.put(sql, &prepared);
        Ok(prepared)
    }

    /// `prepare`, then checks the number of parameters.
    async fn prepare_checked(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[Param],
    ) -> Result<Prepared> {
        let prepared = self.prepare(client, sql).await?;
        let stmt = &prepared.stmt;
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
        Ok(prepared)
    }
}

impl StatementCache {
    /// Runs `sql` with `run` on its cached statement. A statement the error shows stale
    /// is evicted and, when `rerun` (not inside a transaction, which the error aborted),
    /// prepared anew and run once more. Returns the statement it ran and what `run` gave.
    pub async fn run<T, F, Fut>(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[Param],
        rerun: bool,
        run: F,
    ) -> Result<(Prepared, T)>
    where
        F: Fn(Statement) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    {
        let prepared = self.prepare_checked(client, sql, params).await?;
        match run(prepared.stmt.clone()).await {
            Ok(out) => Ok((prepared, out)),
            Err(e) if self.evict_stale(sql, &e) && rerun => {
                let prepared = self.prepare_checked(client, sql, params).await?;
                let out = run(prepared.stmt.clone()).await.map_err(pg)?;
                Ok((prepared, out))
            }
            Err(e) => Err(pg(e)),
        }
    }
}

/// bb8-postgres's manager, giving each connection its statement cache.
#[derive(Debug)]
pub struct PgManager {
    inner: PostgresConnectionManager<NoTls>,
    cache_size: usize,
}

impl PgManager {
    /// Connects with `config`; each connection caches up to `cache_size` statements.
    pub fn new(config: tokio_postgres::Config, cache_size: usize) -> Self {
        PgManager {
            inner: PostgresConnectionManager::new(config, NoTls),
            cache_size,
        }
    }
}

impl bb8::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> std::result::Result<PgConn, Self::Error> {
        Ok(PgConn {
            client: self.inner.connect().await?,
            cache: StatementCache::new(self.cache_size),
        })
    }

    async fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), Self::Error> {
        self.inner.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.inner.has_broken(&mut conn.client)
    }
}
