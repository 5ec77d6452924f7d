//! The statement verbs (`dbpool_core::Executor`) written once for a pool and for a
//! transaction: `Exec` gets a `Session` from its source (a connection checked out of the
//! pool, or the transaction's pinned connection locked) and runs the driver's verb on it.
use super::{note, Driver, Session};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use dbpool_core::{BulkInsert, Executor, Param, QueryStream, Result};
use std::future::Future;
use std::sync::Arc;

/// A driver's verbs, each run on a session from `S`.
pub struct Exec<D: Driver, S> {
    pub(super) driver: Arc<D>,
    pub(super) source: S,
}

/// Where the sessions of an `Exec` come from.
pub trait SessionSource<D: Driver>: Send + Sync + 'static {
    /// The connection for one call.
    fn session(&self, driver: &D) -> impl Future<Output = Result<Session<D::Conn>>> + Send;
}

#[async_trait]
impl<D: Driver, S: SessionSource<D>> Executor for Exec<D, S> {
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        let mut s = self.source.session(&self.driver).await?;
        note::<D>(&mut s, sql);
        self.driver.query(s, sql, params, batch_size).await
    }

    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        let s = self.source.session(&self.driver).await?;
        self.driver.schema(s, sql, params).await
    }

    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        let mut s = self.source.session(&self.driver).await?;
        note::<D>(&mut s, sql);
        self.driver.execute(&mut s, sql, params).await
    }

    async fn bulk_insert(&self, target: BulkInsert, rows: QueryStream) -> Result<u64> {
        let s = self.source.session(&self.driver).await?;
        self.driver.bulk_insert(s, target, rows).await
    }
}
