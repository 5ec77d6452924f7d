//! InfluxDB over HTTP: InfluxQL results streamed as Arrow time series, line-protocol
//! writes, DataFrames in through bulk insert. See docs/influxdb.md.
//!
//! Only the 1.x API (InfluxQL on `/query`, `/write`, basic auth) is implemented, in
//! `v1/`. What does not depend on the API version sits beside it: the URL and settings
//! (`config`), line-protocol escaping (`line`) and the DataFrame → line protocol plan
//! (`bulk`); 2.x and 3.x accept the same line protocol. A 2.x/3.x variant (Flux or SQL,
//! token auth) would be a `v2/` folder with its own client and an `api = "v2"` setting
//! choosing it in `InfluxBackend::new`.
mod bulk;
mod config;
mod line;
pub mod policy;
// Public only for the fuzz targets in fuzz/ (chunked JSON and its conversion).
#[doc(hidden)]
pub mod v1;

pub use bulk::Target;
pub use config::InfluxConfig;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{
    Backend, BatchOutcome, BulkInsert, Error, Param, PoolState, QueryStream, Result, Statement,
    StatementResult, Transaction, TxOptions,
};
use futures::stream::BoxStream;

/// An InfluxDB pool: a bounded number of concurrent HTTP requests to one server.
pub struct InfluxBackend {
    client: v1::Client,
}

impl InfluxBackend {
    /// Builds the pool from an `influxdb://` or `influxdbs://` URL; connects lazily.
    pub fn new(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        let config = InfluxConfig::from_pool(cfg)?;
        Ok(InfluxBackend {
            client: v1::Client::new(pool_id, config, &cfg.options)?,
        })
    }
}

#[async_trait]
impl Backend for InfluxBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Influxdb
    }

    /// InfluxQL; `$1`, `$2`, … are bound to `params`.
    async fn query(&self, sql: &str, params: Vec<Param>, batch_size: usize) -> Result<QueryStream> {
        v1::query::start(&self.client, sql, params, batch_size).await
    }

    /// An InfluxQL statement, or line protocol in the pool's precision.
    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64> {
        v1::write::execute(&self.client, sql, &params).await
    }

    async fn execute_batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        dbpool_core::validate_statements(&statements)?;
        if transaction {
            return Err(Error::Unsupported(
                "transactional batches on influxdb: InfluxDB has no transactions".into(),
            ));
        }
        let mut out = Vec::with_capacity(statements.len());
        for (index, s) in statements.into_iter().enumerate() {
            let outcome = v1::write::execute(&self.client, &s.sql, &s.params).await;
            if matches!(&outcome, Err(e) if e.is_connection_error()) {
                return Err(outcome.unwrap_err());
            }
            out.push(StatementResult { index, outcome });
        }
        Ok(out)
    }

    async fn begin(&self, _: TxOptions) -> Result<Box<dyn Transaction>> {
        Err(Error::Unsupported(
            "transactions on influxdb: InfluxDB has no transactions".into(),
        ))
    }

    async fn bulk_insert(
        &self,
        target: BulkInsert,
        schema: SchemaRef,
        batches: BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<u64> {
        v1::write::bulk_insert(&self.client, target, schema, batches).await
    }

    async fn health_check(&self) -> Result<()> {
        self.client.health().await
    }

    fn state(&self) -> PoolState {
        self.client.state()
    }
}
