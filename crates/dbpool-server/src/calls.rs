//! What PoolService and Flight share: look up the pool, run the call, count it.
use dbpool_core::{CallKind, Error, Param, PoolEntry, PoolManager, QueryStream, Result};
use futures::StreamExt;
use std::sync::Arc;

/// Runs calls against the manager's pools and keeps their counters.
#[derive(Clone)]
pub struct Calls {
    /// The daemon's pools.
    pub manager: Arc<PoolManager>,
}

/// Counts the result of a call on its pool.
fn counted<T>(entry: &PoolEntry, r: Result<T>) -> Result<T> {
    if let Err(e) = &r {
        entry.counters.record_error(e);
    }
    r
}

impl Calls {
    /// Starts a query; the returned stream counts rows and errors as they pass.
    pub async fn query(
        &self,
        pool_id: &str,
        sql: &str,
        params: Vec<Param>,
        batch_size: u32,
    ) -> Result<QueryStream> {
        if sql.trim().is_empty() {
            return Err(Error::invalid("sql", "is empty"));
        }
        let entry = self.manager.get(pool_id)?;
        entry.counters.record_call(CallKind::Query);
        let size = if batch_size > 0 {
            batch_size
        } else {
            entry.config.options.batch_size
        };
        let started = entry.backend.query(sql, params, size as usize).await;
        let QueryStream { schema, batches } = counted(&entry, started)?;
        let batches = batches
            .inspect(move |b| match b {
                Ok(b) => entry.counters.record_rows(b.num_rows() as u64),
                Err(e) => entry.counters.record_error(e),
            })
            .boxed();
        Ok(QueryStream { schema, batches })
    }

    /// The schema of a query without streaming it.
    pub async fn schema(
        &self,
        pool_id: &str,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<arrow::datatypes::SchemaRef> {
        if sql.trim().is_empty() {
            return Err(Error::invalid("sql", "is empty"));
        }
        let entry = self.manager.get(pool_id)?;
        let r = entry.backend.schema(sql, params).await;
        counted(&entry, r)
    }

    /// Runs one statement.
    pub async fn execute(&self, pool_id: &str, sql: &str, params: Vec<Param>) -> Result<u64> {
        if sql.trim().is_empty() {
            return Err(Error::invalid("sql", "is empty"));
        }
        let entry = self.manager.get(pool_id)?;
        entry.counters.record_call(CallKind::Execute);
        let r = entry.backend.execute(sql, params).await;
        counted(&entry, r)
    }

    /// Runs a batch.
    pub async fn execute_batch(
        &self,
        pool_id: &str,
        statements: Vec<dbpool_core::Statement>,
        transaction: bool,
    ) -> Result<dbpool_core::BatchOutcome> {
        let entry = self.manager.get(pool_id)?;
        entry.counters.record_call(CallKind::Batch);
        let r = entry.backend.execute_batch(statements, transaction).await;
        counted(&entry, r)
    }
}
