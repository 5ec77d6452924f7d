//! Redis backend against the real server: every reply shape (RESP2 and RESP3), pattern
//! reads of 100,000 hashes, pipelines and MULTI/EXEC, bulk insert round trips, the
//! denylist, TLS and error classes. Each test owns a key prefix, deleted on drop.
#![cfg(feature = "redis")]
mod reads;
mod tls;
mod writes;

use arrow::array::*;
use arrow::compute::concat_batches;
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{Backend, BackendFactory, Param};
use futures::TryStreamExt;
use std::sync::Arc;

fn base_url() -> String {
    std::env::var("DBPOOL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A unique key prefix; every key under it is deleted on drop, also after a failure.
pub(crate) struct Prefix(pub(crate) String);

impl Prefix {
    pub(crate) fn new() -> Prefix {
        Prefix(format!("{}:", dbpool_testkit::unique_name("dbpool_test")))
    }
    pub(crate) fn k(&self, s: &str) -> String {
        format!("{}{s}", self.0)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let client = redis::Client::open(base_url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.0))
                .arg("COUNT")
                .arg(5000)
                .query(&mut con)
                .unwrap();
            if !keys.is_empty() {
                redis::cmd("UNLINK").arg(&keys).exec(&mut con).unwrap();
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
}

/// Runs commands directly, outside the backend (fixtures and checks).
pub(crate) fn direct(lines: &[&[&str]]) {
    let client = redis::Client::open(base_url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut pipe = redis::pipe();
    for l in lines {
        pipe.cmd(l[0]).arg(&l[1..]);
    }
    pipe.exec(&mut con).unwrap();
}

pub(crate) async fn backend_with(url: &str, settings: &[(&str, &str)]) -> Arc<dyn Backend> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    Factory::default()
        .create("r", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

pub(crate) async fn backend() -> Arc<dyn Backend> {
    backend_with(&base_url(), &[]).await
}

pub(crate) async fn batches(
    b: &dyn Backend,
    cmd: &str,
    params: Vec<Param>,
    size: usize,
) -> Vec<RecordBatch> {
    let q = b.query(cmd, params, size).await.unwrap();
    q.batches.try_collect().await.unwrap()
}

pub(crate) async fn table(b: &dyn Backend, cmd: &str, params: Vec<Param>) -> RecordBatch {
    let q = b.query(cmd, params, 1000).await.unwrap();
    let schema = q.schema.clone();
    let all: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    concat_batches(&schema, &all).unwrap()
}

pub(crate) fn names(r: &RecordBatch) -> Vec<String> {
    r.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

pub(crate) fn strs(a: &ArrayRef) -> Vec<Option<String>> {
    a.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}
