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

use crate::exec::{ConnPool, Driver, PoolBackend, Session};
use arrow::datatypes::SchemaRef;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{BulkInsert, Param, PoolState, QueryStream, Result};

/// An InfluxDB pool.
pub type InfluxBackend = PoolBackend<InfluxDriver>;

/// InfluxDB over HTTP: a bounded number of concurrent requests to one server.
pub struct InfluxDriver {
    client: v1::Client,
}

/// Each call takes its request slot itself: a session holds no connection.
impl ConnPool for v1::Client {
    type Conn = ();

    async fn acquire(&self) -> Result<()> {
        Ok(())
    }

    fn state(&self) -> PoolState {
        v1::Client::state(self)
    }
}

impl Driver for InfluxDriver {
    type Conn = ();
    type Pool = v1::Client;
    const KIND: BackendKind = BackendKind::Influxdb;
    const NO_TRANSACTIONS: Option<&'static str> = Some("InfluxDB has no transactions");

    /// Builds the pool from an `influxdb://` or `influxdbs://` URL.
    fn open(pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        let config = InfluxConfig::from_pool(cfg)?;
        Ok(InfluxDriver {
            client: v1::Client::new(pool_id, config, &cfg.options)?,
        })
    }

    fn pool(&self) -> &v1::Client {
        &self.client
    }

    /// InfluxQL; `$1`, `$2`, … are bound to `params`.
    async fn query(
        &self,
        _: Session<()>,
        sql: &str,
        params: Vec<Param>,
        batch_size: usize,
    ) -> Result<QueryStream> {
        v1::query::start(&self.client, sql, params, batch_size).await
    }

    async fn schema(&self, _: Session<()>, sql: &str, params: Vec<Param>) -> Result<SchemaRef> {
        Ok(v1::query::start(&self.client, sql, params, 1).await?.schema)
    }

    /// An InfluxQL statement, or line protocol in the pool's precision.
    async fn execute(&self, _: &mut Session<()>, sql: &str, params: Vec<Param>) -> Result<u64> {
        v1::write::execute(&self.client, sql, &params).await
    }

    async fn bulk_insert(
        &self,
        _: Session<()>,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        v1::write::bulk_insert(&self.client, target, rows).await
    }

    async fn health_check(&self) -> Result<()> {
        self.client.health().await
    }
}
