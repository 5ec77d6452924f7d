//! Bulk insert over Arrow Flight DoPut end to end: a Polars-shaped frame into real
//! PostgreSQL and SQLite, the row count in the PutResult, schema mismatches refused.
mod common;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Int64Type};
use arrow::record_batch::RecordBatch;
use common::bulk::do_put;
use common::*;
use dbpool_proto::v1::InsertMode;
use dbpool_testkit::PgDb;
use std::sync::Arc;
use tonic::Code;

/// What `polars.DataFrame.to_arrow()` sends: string views, ns timestamps, large lists.
fn polars_frame(from: i64, n: i64) -> RecordBatch {
    let ids = from..from + n;
    let names =
        StringViewArray::from_iter(ids.clone().map(|i| (i % 10 != 0).then(|| format!("n{i}"))));
    let at = TimestampNanosecondArray::from_iter_values(ids.clone().map(|i| i * 1_000_000_000))
        .with_timezone("UTC");
    let tags = LargeListArray::from_iter_primitive::<Int64Type, _, _>(
        ids.clone().map(|i| Some(vec![Some(i), None])),
    );
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(ids.clone())) as ArrayRef,
        ),
        ("name", Arc::new(names)),
        (
            "score",
            Arc::new(Float64Array::from_iter_values(ids.map(|i| i as f64 / 2.0))),
        ),
        ("at", Arc::new(at)),
        ("tags", Arc::new(tags)),
    ])
    .unwrap()
}

#[tokio::test]
async fn do_put_inserts_and_refuses_mismatches() {
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let lite = format!("sqlite://{}/bulk.db", dir.path().display());
    let server = TestServer::start(&[("pg", &db.url), ("lite", &lite)]).await;
    let mut f = server.flight().await;
    let batches: Vec<RecordBatch> = (0..3).map(|k| polars_frame(k * 10_000, 10_000)).collect();
    let n = do_put(&mut f, "pg", "events", InsertMode::Create, batches.clone())
        .await
        .unwrap();
    assert_eq!(n, 30_000);
    let c = db.client().await;
    let row = c
        .query_one(
            "SELECT count(*), count(name), extract(epoch FROM max(at))::int8, sum(cardinality(tags))::int8,
                    pg_typeof(max(at))::text, pg_typeof(min(tags))::text FROM events",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 30_000);
    assert_eq!(row.get::<_, i64>(1), 27_000);
    assert_eq!(row.get::<_, i64>(2), 29_999);
    assert_eq!(row.get::<_, i64>(3), 60_000);
    assert_eq!(row.get::<_, String>(4), "timestamp with time zone");
    assert_eq!(row.get::<_, String>(5), "bigint[]");
    let n = do_put(
        &mut f,
        "pg",
        "events",
        InsertMode::AppendUnspecified,
        vec![polars_frame(30_000, 5)],
    )
    .await
    .unwrap();
    assert_eq!(n, 5);

    // A column the table does not have: INVALID_ARGUMENT naming it, nothing written.
    let extra = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("nope", Arc::new(Int64Array::from(vec![1]))),
    ])
    .unwrap();
    let s = do_put(
        &mut f,
        "pg",
        "events",
        InsertMode::AppendUnspecified,
        vec![extra],
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("nope"), "{s:?}");
    // A type the column cannot take.
    let text_id = RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(vec![Field::new(
            "id",
            DataType::Utf8,
            true,
        )])),
        vec![Arc::new(StringArray::from(vec!["1"]))],
    )
    .unwrap();
    let s = do_put(
        &mut f,
        "pg",
        "events",
        InsertMode::AppendUnspecified,
        vec![text_id],
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("int8"), "{s:?}");
    let count: i64 = c
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 30_005);

    // Unknown pool and empty table name.
    let s = do_put(
        &mut f,
        "nope",
        "t",
        InsertMode::Create,
        vec![polars_frame(0, 1)],
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let s = do_put(
        &mut f,
        "pg",
        "",
        InsertMode::Create,
        vec![polars_frame(0, 1)],
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");

    // SQLite takes the same frame (lists aside) in one transaction.
    let flat: Vec<RecordBatch> = batches
        .iter()
        .map(|b| b.project(&[0, 1, 2, 3]).unwrap())
        .collect();
    let n = do_put(&mut f, "lite", "events", InsertMode::Replace, flat)
        .await
        .unwrap();
    assert_eq!(n, 30_000);
    let s = do_put(
        &mut f,
        "lite",
        "events",
        InsertMode::Create,
        vec![polars_frame(0, 1)],
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().contains("tags"),
        "lists are refused by name: {s:?}"
    );
}
