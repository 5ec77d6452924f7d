//! Every legal PostgreSQL numeric type modifier against the real server (15+: scale
//! above precision, negative scale), values compared exactly; and values past what
//! Arrow holds (far timestamps, huge numerics) are errors naming the column, never a
//! panic that takes the daemon down.
use arrow::array::{Array, Decimal128Array, StringArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{Backend, BackendFactory, Error};
use dbpool_testkit::PgDb;
use futures::TryStreamExt;
use std::sync::Arc;

async fn backend(url: &str) -> Arc<dyn Backend> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        ..Default::default()
    };
    Factory::default()
        .create("num", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

async fn query(b: &dyn Backend, sql: &str) -> dbpool_core::Result<RecordBatch> {
    let q = b.query(sql, vec![], 1000).await?;
    let batches: Vec<RecordBatch> = q.batches.try_collect().await?;
    Ok(arrow::compute::concat_batches(&q.schema, &batches).unwrap())
}

/// The one column's type and its values as (unscaled integer or text).
fn decimals(r: &RecordBatch) -> (DataType, Vec<Option<i128>>) {
    let col = r.column(0);
    let a = col.as_any().downcast_ref::<Decimal128Array>().unwrap();
    (col.data_type().clone(), a.iter().collect())
}

#[tokio::test]
async fn scale_above_precision_decodes_exactly() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    // The statement: numeric(3,5) holds |v| < 0.01 with 5 decimals.
    let r = query(&*b, "SELECT 0.001::numeric(3,5) AS v").await.unwrap();
    assert_eq!(decimals(&r), (DataType::Decimal128(5, 5), vec![Some(100)]));
    db.exec("CREATE TABLE t (v numeric(2, 4)); INSERT INTO t VALUES (0.0099), (-0.0012), (NULL)")
        .await;
    let r = query(&*b, "SELECT v FROM t ORDER BY v NULLS LAST")
        .await
        .unwrap();
    assert_eq!(
        decimals(&r),
        (DataType::Decimal128(4, 4), vec![Some(-12), Some(99), None])
    );
}

#[tokio::test]
async fn negative_scale_decodes_exactly() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    db.exec("CREATE TABLE t (v numeric(3, -2)); INSERT INTO t VALUES (12345), (-99949), (49)")
        .await;
    // Rounded to hundreds by PostgreSQL on insert: 12300, -99900, 0.
    let r = query(&*b, "SELECT v FROM t ORDER BY v").await.unwrap();
    assert_eq!(
        decimals(&r),
        (
            DataType::Decimal128(5, 0),
            vec![Some(-99_900), Some(0), Some(12_300)]
        )
    );
}

#[tokio::test]
async fn usual_and_edge_modifiers() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    let cases: [(&str, DataType, i128); 5] = [
        (
            "(-123.45)::numeric(5,2)",
            DataType::Decimal128(5, 2),
            -12_345,
        ),
        ("7::numeric(1,0)", DataType::Decimal128(1, 0), 7),
        (
            "0.12345678901234567890123456789012345678::numeric(38,38)",
            DataType::Decimal128(38, 38),
            12_345_678_901_234_567_890_123_456_789_012_345_678,
        ),
        ("5e-39::numeric(1,39)", DataType::Utf8, 0),
        ("1.5::numeric(1000,1)", DataType::Utf8, 0),
    ];
    for (expr, ty, unscaled) in cases {
        let r = query(&*b, &format!("SELECT {expr} AS v")).await.unwrap();
        assert_eq!(r.column(0).data_type(), &ty, "{expr}");
        if ty == DataType::Utf8 {
            let s = r.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let want = if expr.starts_with("5e") {
                "0.000000000000000000000000000000000000005"
            } else {
                "1.5"
            };
            assert_eq!(s.value(0), want, "{expr}");
        } else {
            assert_eq!(decimals(&r).1, vec![Some(unscaled)], "{expr}");
        }
    }
}

#[tokio::test]
async fn unconstrained_numeric_rounds_to_ten_places() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    let r = query(
        &*b,
        "SELECT v FROM (VALUES (1e-50::numeric, 1), (2.00000000005::numeric, 2), \
         (1.0000000000000000000000000000000000000001::numeric, 3)) x(v, o) ORDER BY o",
    )
    .await
    .unwrap();
    assert_eq!(
        decimals(&r),
        (
            DataType::Decimal128(38, 10),
            vec![Some(0), Some(20_000_000_001), Some(10_000_000_000)]
        )
    );
    // 29 integer digits do not fit Decimal128(38, 10): an error naming the column.
    let e = query(&*b, "SELECT 1e28::numeric AS big").await.unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument { .. }), "{e:?}");
    assert!(e.to_string().contains("`big`"), "{e}");
}

#[tokio::test]
async fn values_beyond_arrow_are_errors_not_panics() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    for (sql, col) in [
        // PostgreSQL's timestamps reach 294276 AD; microseconds since 1970 in an i64 do
        // not.
        ("SELECT '294276-01-01'::timestamp AS far", "far"),
        ("SELECT 'NaN'::numeric(5,2) AS nan", "nan"),
        ("SELECT 'infinity'::timestamptz AS inf", "inf"),
    ] {
        let e = query(&*b, sql).await.unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { .. }), "{sql}: {e:?}");
        assert!(e.to_string().contains(&format!("`{col}`")), "{e}");
    }
    // The pool is fine afterwards.
    let r = query(&*b, "SELECT '294000-01-01'::timestamp AS ok")
        .await
        .unwrap();
    assert_eq!(r.num_rows(), 1);
    assert_eq!(r.column(0).null_count(), 0);
}
