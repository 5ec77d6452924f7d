//! A driver behind its pool, as the server sees it: `dbpool_core::Backend`, written once
//! for every database. Each call checks a connection out of the pool.
use super::run::{Exec, SessionSource};
use super::{Catalog, ConnPool, Driver, PinnedTx, Session};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{
    Backend, BatchOutcome, Error, HistogramSnapshot, PoolState, Result, Statement, TableRef,
    Transaction, TxOptions,
};
use std::sync::Arc;

/// Sessions checked out of the driver's pool, one per call.
pub struct FromPool;

impl<D: Driver> SessionSource<D> for FromPool {
    async fn session(&self, driver: &D) -> Result<Session<D::Conn>> {
        Ok(Session::pooled(driver.pool().acquire().await?))
    }
}

/// A database's pool: its driver, shared with the transactions begun on it.
pub type PoolBackend<D> = Exec<D, FromPool>;

impl<D: Driver> PoolBackend<D> {
    /// Builds the pool from a resolved pool config; connects lazily.
    pub fn new(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        Ok(Self::from_driver(D::open(pool_id, cfg)?))
    }

    /// The pool of a driver built already.
    pub fn from_driver(driver: D) -> Self {
        Exec {
            driver: Arc::new(driver),
            source: FromPool,
        }
    }

    /// The database's driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    fn catalog(&self, what: &str) -> Result<&dyn Catalog> {
        self.driver
            .catalog()
            .ok_or_else(|| Error::Unsupported(format!("{what} of {}", D::KIND.name())))
    }
}

#[async_trait]
impl<D: Driver> Backend for PoolBackend<D> {
    fn kind(&self) -> BackendKind {
        D::KIND
    }

    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        dbpool_core::validate_statements(&statements)?;
        self.driver.batch(statements, transaction).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        if let Some(why) = D::NO_TRANSACTIONS {
            return Err(Error::Unsupported(format!(
                "interactive transactions on {}: {why}",
                D::KIND.name()
            )));
        }
        let mut s = self.source.session(&*self.driver).await?;
        self.driver.begin(&mut s, options).await?;
        Ok(Box::new(PinnedTx::pin(self.driver.clone(), s.into_conn()?)))
    }

    async fn catalog_name(&self) -> Result<String> {
        self.catalog("catalogs")?.catalog_name().await
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        self.catalog("schemas")?.list_schemas().await
    }

    async fn list_tables(&self) -> Result<Vec<TableRef>> {
        self.catalog("tables")?.list_tables().await
    }

    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef> {
        self.catalog("table schemas")?
            .table_schema(db_schema, table)
            .await
    }

    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>> {
        self.catalog("primary keys")?
            .primary_keys(db_schema, table)
            .await
    }

    async fn health_check(&self) -> Result<()> {
        self.driver.health_check().await
    }

    fn state(&self) -> PoolState {
        self.driver.pool().state()
    }

    fn acquire_wait(&self) -> HistogramSnapshot {
        self.driver.pool().acquire_wait()
    }
}
