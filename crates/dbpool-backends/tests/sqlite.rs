//! SQLite backend on real files: type mapping, mixed columns, parameters, batches, errors.
use arrow::array::*;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{Backend, BackendFactory, Error, Param, Statement};
use futures::TryStreamExt;
use std::sync::Arc;

async fn backend(dir: &tempfile::TempDir) -> Arc<dyn Backend> {
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        ..Default::default()
    };
    Factory::default()
        .create("t", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

async fn rows(b: &dyn Backend, sql: &str, params: Vec<Param>, batch: usize) -> Vec<RecordBatch> {
    b.query(sql, params, batch)
        .await
        .unwrap()
        .batches
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn declared_types_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(&dir).await;
    b.execute(
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, x BLOB, f BOOLEAN, d DATE, n NUMERIC)",
        vec![],
    )
    .await
    .unwrap();
    let n = b
        .execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                Param::Int64(42),
                Param::Double(1.5),
                Param::String("héllo".into()),
                Param::Bytes(vec![0, 255]),
                Param::Bool(true),
                Param::String("2024-01-02".into()),
                Param::Decimal("2.5".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    b.execute(
        "INSERT INTO t VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        vec![],
    )
    .await
    .unwrap();
    let out = rows(&*b, "SELECT * FROM t ORDER BY i IS NULL", vec![], 100).await;
    assert_eq!(out.len(), 1);
    let r = &out[0];
    let types: Vec<DataType> = r
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Binary,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Float64
        ]
    );
    assert_eq!(
        r.column(0).as_ref(),
        &Int64Array::from(vec![Some(42), None]) as &dyn Array
    );
    assert_eq!(
        r.column(1).as_ref(),
        &Float64Array::from(vec![Some(1.5), None]) as &dyn Array
    );
    assert_eq!(
        r.column(2).as_ref(),
        &StringArray::from(vec![Some("héllo"), None]) as &dyn Array
    );
    assert_eq!(
        r.column(3).as_ref(),
        &BinaryArray::from(vec![Some(&[0u8, 255][..]), None]) as &dyn Array
    );
    assert_eq!(
        r.column(4).as_ref(),
        &BooleanArray::from(vec![Some(true), None]) as &dyn Array
    );
    assert_eq!(
        r.column(5).as_ref(),
        &StringArray::from(vec![Some("2024-01-02"), None]) as &dyn Array
    );
    assert_eq!(
        r.column(6).as_ref(),
        &Float64Array::from(vec![Some(2.5), None]) as &dyn Array
    );
}

#[tokio::test]
async fn expression_columns_are_inferred_and_widened() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(&dir).await;
    let out = rows(
        &*b,
        "SELECT 1 AS a, 2.5 AS b, 'x' AS c, NULL AS d UNION ALL SELECT 2.5, 3, 4, NULL",
        vec![],
        100,
    )
    .await;
    let s = out[0].schema();
    assert_eq!(s.field(0).data_type(), &DataType::Float64);
    assert_eq!(s.field(1).data_type(), &DataType::Float64);
    assert_eq!(s.field(2).data_type(), &DataType::Utf8);
    assert_eq!(s.field(3).data_type(), &DataType::Utf8);
    assert_eq!(
        out[0].column(0).as_primitive::<Float64Type>().values(),
        &[1.0, 2.5]
    );
    assert_eq!(out[0].column(2).as_string::<i32>().value(1), "4");
    // A later batch holding a value that does not fit the column is a named error.
    let q = b
        .query("SELECT 1 AS a UNION ALL SELECT 'text'", vec![], 1)
        .await
        .unwrap();
    let e = q.batches.try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains("column `a` row 1"), "{e}");
}

#[tokio::test]
async fn empty_result_keeps_schema_and_batches_split() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(&dir).await;
    b.execute("CREATE TABLE e (id INTEGER, s TEXT)", vec![])
        .await
        .unwrap();
    let q = b.query("SELECT * FROM e", vec![], 10).await.unwrap();
    assert_eq!(q.schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(q.batches.try_collect::<Vec<_>>().await.unwrap().len(), 0);
    let sql = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10000) SELECT n FROM c";
    let out = rows(&*b, sql, vec![], 1000).await;
    assert_eq!(out.len(), 10);
    let all: Vec<i64> = out
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(all, (1..=10000).collect::<Vec<i64>>());
}

#[tokio::test]
async fn errors_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(&dir).await;
    let e = b
        .query("SELECT * FROM missing", vec![], 10)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Database { message, code: Some(_) } if message.contains("no such table")),
        "{e}"
    );
    let e = b.execute("SELECT ?", vec![]).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    b.execute("CREATE TABLE k (id INTEGER PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let st = |sql: &str| Statement {
        sql: sql.into(),
        params: vec![],
    };
    let e = b
        .execute_batch(
            vec![
                st("INSERT INTO k VALUES (1)"),
                st("INSERT INTO k VALUES (1)"),
            ],
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BatchStatement { index: 1, .. }), "{e}");
    let out = rows(&*b, "SELECT count(*) AS n FROM k", vec![], 10).await;
    assert_eq!(out[0].column(0).as_primitive::<Int64Type>().value(0), 0);
}

/// Describing a statement prepares it and runs nothing: a query that fails only when it
/// runs is described (declared types, Utf8 for an expression) and fails when queried; a
/// write with RETURNING is described without writing.
#[tokio::test]
async fn describing_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(&dir).await;
    b.execute("CREATE TABLE t (v INTEGER, s TEXT)", vec![])
        .await
        .unwrap();
    b.execute("INSERT INTO t VALUES (1, 'a')", vec![])
        .await
        .unwrap();
    let fails_when_run = "SELECT v, s, json('not json') AS j FROM t";
    let schema = b.schema(fails_when_run, vec![]).await.unwrap();
    let described: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        described,
        [
            ("v", &DataType::Int64),
            ("s", &DataType::Utf8),
            ("j", &DataType::Utf8)
        ]
    );
    let ran = b.query(fails_when_run, vec![], 10).await;
    assert!(ran.is_err(), "the statement does fail when it runs");
    let schema = b
        .schema("INSERT INTO t VALUES (2, 'b') RETURNING v", vec![])
        .await
        .unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert!(b
        .schema("DELETE FROM t", vec![])
        .await
        .unwrap()
        .fields()
        .is_empty());
    let out = rows(&*b, "SELECT count(*) AS n FROM t", vec![], 10).await;
    assert_eq!(out[0].column(0).as_primitive::<Int64Type>().value(0), 1);
}
