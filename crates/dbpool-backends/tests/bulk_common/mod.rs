//! Helpers the bulk-insert tests share: a backend from a URL, puts, reads, comparisons.
#![allow(dead_code)]
use arrow::array::*;
use arrow::compute::concat_batches;
use arrow::datatypes::Int64Type;
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{Backend, BackendFactory, BulkInsert, Error, InsertMode, QueryStream, Result};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

/// A backend for a pool URL.
pub async fn backend(url: &str) -> Arc<dyn Backend> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        ..Default::default()
    };
    Factory::default()
        .create("t", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

/// Bulk-inserts `items` (batches or errors) with the schema of the first batch.
pub async fn put_stream(
    b: &dyn Backend,
    table: &str,
    mode: InsertMode,
    items: Vec<Result<RecordBatch>>,
) -> Result<u64> {
    let schema = items[0].as_ref().unwrap().schema();
    let target = BulkInsert {
        table: table.into(),
        mode,
    };
    let batches = futures::stream::iter(items).boxed();
    b.bulk_insert(target, QueryStream { schema, batches }).await
}

/// Bulk-inserts `batches`.
pub async fn put(
    b: &dyn Backend,
    table: &str,
    mode: InsertMode,
    batches: &[RecordBatch],
) -> Result<u64> {
    put_stream(b, table, mode, batches.iter().cloned().map(Ok).collect()).await
}

/// The whole result of `sql` as one batch.
pub async fn read(b: &dyn Backend, sql: &str) -> RecordBatch {
    let q = b.query(sql, vec![], 65_536).await.unwrap();
    let batches: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    concat_batches(&q.schema, &batches).unwrap()
}

/// `count(*)` of a table.
pub async fn count(b: &dyn Backend, table: &str) -> i64 {
    let r = read(b, &format!("SELECT count(*) AS n FROM {table}")).await;
    r.column(0).as_primitive::<Int64Type>().value(0)
}

/// A batch of named columns.
pub fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(cols).unwrap()
}

/// The field an InvalidArgument names.
pub fn invalid_field(e: &Error) -> &str {
    match e {
        Error::InvalidArgument { field, .. } => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Same columns by name, types and values (schemas' nullability aside).
pub fn assert_same(got: &RecordBatch, want: &RecordBatch) {
    assert_eq!(got.num_rows(), want.num_rows());
    assert_eq!(got.num_columns(), want.num_columns());
    for (i, f) in want.schema().fields().iter().enumerate() {
        let g = got.column_by_name(f.name()).unwrap();
        assert_eq!(g.data_type(), f.data_type(), "type of {}", f.name());
        assert!(
            g.as_ref() == want.column(i).as_ref(),
            "values of {}",
            f.name()
        );
    }
}
