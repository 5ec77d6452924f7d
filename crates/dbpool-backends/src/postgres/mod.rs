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
mod reset;
mod script;
mod session;
mod tls;
mod tls_binding;
mod tls_config;
mod tx;

pub use convert::{arrow_type, Decoder};
pub use tls::PgTlsFailure;

use crate::exec::{Catalog, Driver, PoolBackend, Session};
use crate::pool::{Conn, PoolHandle};
use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use cancel::Cancelling;
use dbpool_config::{BackendKind, PgTls, ResolvedPool};
use dbpool_core::{BulkInsert, Error, Param, QueryStream, Result, TableRef, TxOptions};
use params::PgParam;
use postgres_types::{ToSql, Type};
use query::start_query;
use session::{PgManager, StatementCache, StatementMode, Target};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{Client, GenericClient};

type Manager = PgManager;

/// A connection a PostgreSQL call runs on: pooled, or pinned to a transaction.
pub(crate) type PgSession = Session<Conn<Manager>>;

/// The tokio-postgres client of a session.
pub(crate) fn client(s: &PgSession) -> &Client {
    s
}

/// A PostgreSQL pool.
pub type PgBackend = PoolBackend<PgDriver>;

impl PgBackend {
    /// How statements run now: `named` or `unnamed` (`auto` has switched once it
    /// detected a transaction-mode pooler).
    pub fn statement_mode(&self) -> &'static str {
        if self.driver().mode.unnamed() {
            "unnamed"
        } else {
            "named"
        }
    }
}

/// PostgreSQL through bb8-postgres, with the pool's statement mode.
pub struct PgDriver {
    pool: PoolHandle<Manager>,
    mode: Arc<StatementMode>,
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
pub(crate) async fn describe(s: &PgSession, sql: &str, params: &[Param]) -> Result<SchemaRef> {
    if params.is_empty() && script::is_script(sql) {
        return Ok(Arc::new(Schema::empty()));
    }
    let cache = s.cache();
    if cache.unnamed() {
        return cache
            .describe_unnamed(client(s), sql, s.in_transaction())
            .await;
    }
    // Parameters may be bound later (Flight SQL prepared statements): no count check.
    Ok(cache.prepare(client(s), sql).await?.schema)
}

impl Driver for PgDriver {
    type Conn = Conn<Manager>;
    type Pool = PoolHandle<Manager>;
    const KIND: BackendKind = BackendKind::Postgres;

    /// Builds the pool from a `postgres://` URL.
    fn open(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        // The libpq TLS keys leave the URL: tokio-postgres knows neither verify-ca nor
        // verify-full nor the files.
        let (url, tls) =
            PgTls::split(cfg.url.expose()).map_err(|e| Error::invalid("url", e.to_string()))?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::invalid("url", format!("not a PostgreSQL URL: {e}")))?;
        pg.ssl_mode(tls::driver_mode(tls.mode));
        let connector = tls::MakeRustls::new(&tls)?;
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
        let manager = PgManager::new(pg, connector, cache_size, mode.clone());
        Ok(PgDriver {
            pool: PoolHandle::new(manager, &cfg.options, error::classify).with_reset(reset::reset),
            mode,
        })
    }

    fn pool(&self) -> &PoolHandle<Manager> {
        &self.pool
    }

    async fn query(
        &self,
        s: PgSession,
        sql: &str,
        params: Vec<Param>,
        batch_size: usize,
    ) -> Result<QueryStream> {
        start_query(s, sql, params, batch_size).await
    }

    async fn schema(&self, s: PgSession, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        describe(&s, sql, &params).await
    }

    async fn execute(&self, s: &mut PgSession, sql: &str, params: Vec<Param>) -> Result<u64> {
        if s.interactive() {
            return execute_on(client(s), s.cache(), false, sql, &params).await;
        }
        // Armed while the statement runs: a caller that goes away cancels it.
        let c = Cancelling::new(s.lend()?);
        let rerun = !c.inner().in_transaction();
        let r = execute_on(c.client(), c.inner().cache(), rerun, sql, &params).await;
        s.restore(c.finish());
        r
    }

    async fn bulk_insert(
        &self,
        s: PgSession,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        copy::bulk_insert(s, target, rows).await
    }

    async fn begin(&self, s: &mut PgSession, options: TxOptions) -> Result<()> {
        s.batch_execute(&tx::begin_sql(options)).await.map_err(pg)
    }

    async fn end(&self, s: &mut PgSession, commit: bool) -> Result<()> {
        if commit {
            tx::commit_checked(client(s)).await
        } else {
            s.batch_execute("ROLLBACK").await.map_err(pg)
        }
    }

    fn abandon(conn: Conn<Manager>) {
        tx::abandon(conn)
    }

    async fn health_check(&self) -> Result<()> {
        let conn = self.pool.acquire().await?;
        conn.simple_query("SELECT 1").await.map_err(pg)?;
        Ok(())
    }

    fn catalog(&self) -> Option<&dyn Catalog> {
        Some(self)
    }
}

#[async_trait]
impl Catalog for PgDriver {
    async fn catalog_name(&self) -> Result<String> {
        meta::catalog_name(&*self.pool.acquire().await?).await
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        meta::list_schemas(&*self.pool.acquire().await?).await
    }

    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        meta::list_tables(&*self.pool.acquire().await?).await
    }

    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        let sql = format!("SELECT * FROM {}", meta::qualified(db_schema, table));
        describe(&Session::pooled(self.pool.acquire().await?), &sql, &[]).await
    }

    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        meta::primary_keys(&*self.pool.acquire().await?, db_schema, table).await
    }
}
