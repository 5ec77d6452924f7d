//! The statement verbs a pool and a transaction share: `Backend` (a pool) and
//! `Transaction` (a pinned connection) both extend `Executor`, so a caller that runs a
//! statement chooses pool or transaction once and then sees one interface.
use crate::{BulkInsert, Error, Param, QueryStream, Result};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

/// Runs statements: on a connection of a pool, or inside a transaction.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs a query; the schema is known when this returns, batches stream afterwards.
    /// Inside a transaction the connection stays busy until the stream ends.
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream>;

    /// The schema a query would return, without running it where the database can tell
    /// (PostgreSQL and SQLite prepare the statement) and without keeping what a
    /// statement that writes would write; the default (and MSSQL, Redis, InfluxDB) run
    /// it and read the first batch (docs/flight-sql.md).
    async fn schema(&self, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        Ok(self.query(sql, params, 1).await?.schema)
    }

    /// Runs one statement and returns the rows it affected.
    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64>;

    /// Writes `rows` (a schema and its record batches) into `target.table`: every row
    /// or none. The schema is checked against the table before any row is written.
    async fn bulk_insert(&self, target: BulkInsert, rows: QueryStream) -> Result<u64> {
        let _ = (target, rows);
        Err(Error::Unsupported("bulk insert here".into()))
    }
}
