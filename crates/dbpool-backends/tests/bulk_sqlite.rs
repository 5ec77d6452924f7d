//! SQLite bulk insert on real files: every type read back exactly, create/replace/append,
//! schema checks, mid-stream failures.
mod bulk_common;

use arrow::array::*;
use arrow::compute::concat_batches;
use arrow::datatypes::*;
use bulk_common::*;
use dbpool_core::{Backend, Error, InsertMode};
use std::sync::Arc;
use std::time::Instant;

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Backend> {
    backend(&format!("sqlite://{}/t.db", dir.path().display())).await
}

/// Rows `start..start + n` of every supported type, each column with NULLs; and the
/// columns `query` reads back (Int64, Float64, Boolean, Utf8, Binary).
fn every_type(start: usize, n: usize) -> (RecordBatch, RecordBatch) {
    let rows = start..start + n;
    let null = |i: usize, k: usize| (i + k).is_multiple_of(7);
    let opt = |i: usize, k: usize, v: i64| (!null(i, k)).then_some(v);
    let fmt = |k: usize, f: &dyn Fn(i64) -> String| {
        StringArray::from_iter(rows.clone().map(|i| opt(i, k, i as i64).map(f)))
    };
    let ts = |i: i64| (i - 500_000) * 3_600_000_123;
    let utc = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap();
    let id = Int64Array::from_iter_values(rows.clone().map(|i| i as i64));
    let b = BooleanArray::from_iter(rows.clone().map(|i| opt(i, 1, 0).map(|_| i % 3 == 0)));
    let i2 = Int16Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 2, (i % 30_000) as i64).map(|v| v as i16)),
    );
    let i8 = Int64Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 3, (i as i64 - 500_000) * 9_007_199_254)),
    );
    let f4 = Float32Array::from_iter(rows.clone().map(|i| opt(i, 4, 0).map(|_| i as f32 * 0.25)));
    let f8 = Float64Array::from_iter(rows.clone().map(|i| opt(i, 5, 0).map(|_| i as f64 / 3.0)));
    let dec = |i: i64| (i as i128 - 500_000) * 1_999_999;
    let n = Decimal128Array::from_iter(rows.clone().map(|i| opt(i, 6, i as i64).map(dec)))
        .with_precision_and_scale(12, 3)
        .unwrap();
    let t = StringArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 0, 0).map(|_| format!("row {i} ü"))),
    );
    let by = BinaryArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 1, 0).map(|_| vec![(i % 256) as u8; i % 5])),
    );
    let d = Date32Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 2, (i % 100_000) as i64 - 50_000).map(|v| v as i32)),
    );
    let tm = Time64MicrosecondArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 3, (i as i64 * 1_234_567) % 86_400_000_000)),
    );
    let tsn = TimestampMicrosecondArray::from_iter(rows.clone().map(|i| opt(i, 4, ts(i as i64))));
    let tsz = TimestampMicrosecondArray::from_iter(rows.clone().map(|i| opt(i, 5, ts(i as i64))))
        .with_timezone("Asia/Tokyo");
    let du =
        DurationMicrosecondArray::from_iter(rows.clone().map(|i| opt(i, 6, i as i64 * 1_000_003)));
    let input = batch(vec![
        ("id", Arc::new(id.clone())),
        ("b", Arc::new(b.clone())),
        ("i2", Arc::new(i2)),
        ("i8", Arc::new(i8.clone())),
        ("f4", Arc::new(f4)),
        ("f8", Arc::new(f8.clone())),
        ("n", Arc::new(n.clone())),
        ("t", Arc::new(t.clone())),
        ("by", Arc::new(by.clone())),
        ("d", Arc::new(d)),
        ("tm", Arc::new(tm)),
        ("tsn", Arc::new(tsn)),
        ("tsz", Arc::new(tsz)),
        ("du", Arc::new(du.clone())),
    ]);
    let stamp = |k: usize| {
        fmt(k, &|i| {
            utc(ts(i)).format("%Y-%m-%d %H:%M:%S%.6f").to_string()
        })
    };
    let expect = batch(vec![
        ("id", Arc::new(id)),
        ("b", Arc::new(b)),
        (
            "i2",
            Arc::new(Int64Array::from_iter(
                rows.clone().map(|i| opt(i, 2, (i % 30_000) as i64)),
            )),
        ),
        ("i8", Arc::new(i8)),
        (
            "f4",
            Arc::new(Float64Array::from_iter(
                rows.clone().map(|i| opt(i, 4, 0).map(|_| i as f64 * 0.25)),
            )),
        ),
        ("f8", Arc::new(f8)),
        (
            "n",
            Arc::new(StringArray::from_iter(
                (0..n.len()).map(|r| n.is_valid(r).then(|| n.value_as_string(r))),
            )),
        ),
        ("t", Arc::new(t)),
        ("by", Arc::new(by)),
        (
            "d",
            Arc::new(fmt(2, &|i| {
                (chrono::NaiveDate::default() + chrono::TimeDelta::days(i % 100_000 - 50_000))
                    .to_string()
            })),
        ),
        (
            "tm",
            Arc::new(fmt(3, &|i| {
                utc((i * 1_234_567) % 86_400_000_000)
                    .format("%H:%M:%S%.6f")
                    .to_string()
            })),
        ),
        ("tsn", Arc::new(stamp(4))),
        ("tsz", Arc::new(stamp(5))),
        ("du", Arc::new(du.reinterpret_cast::<Int64Type>())),
    ]);
    (input, expect)
}

#[tokio::test]
async fn every_type_reads_back_exactly() {
    const ROWS: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    let (input, expect): (Vec<_>, Vec<_>) = (0..ROWS)
        .step_by(20_000)
        .map(|s| every_type(s, 20_000))
        .unzip();
    let started = Instant::now();
    assert_eq!(
        put(&*b, "t", InsertMode::Create, &input).await.unwrap(),
        ROWS as u64
    );
    eprintln!("sqlite bulk insert: {ROWS} rows in {:?}", started.elapsed());
    let got = read(&*b, "SELECT * FROM t ORDER BY id").await;
    assert_same(&got, &concat_batches(&expect[0].schema(), &expect).unwrap());
}

#[tokio::test]
async fn create_replace_append_and_what_query_returns() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    let (first, expect) = every_type(0, 100);
    assert_eq!(
        put(
            &*b,
            "main.Orders",
            InsertMode::Create,
            std::slice::from_ref(&first)
        )
        .await
        .unwrap(),
        100
    );
    let e = put(&*b, "Orders", InsertMode::Create, &[first])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    // What `query` returns goes back in as it is.
    let read_back = read(&*b, "SELECT * FROM \"Orders\" ORDER BY id").await;
    assert_same(&read_back, &expect);
    assert_eq!(
        put(
            &*b,
            "Orders",
            InsertMode::Append,
            std::slice::from_ref(&read_back)
        )
        .await
        .unwrap(),
        100
    );
    assert_eq!(count(&*b, "\"Orders\"").await, 200);
    let other = batch(vec![(
        "k",
        Arc::new(StringViewArray::from(vec!["x", "y"])) as ArrayRef,
    )]);
    assert_eq!(
        put(&*b, "Orders", InsertMode::Replace, &[other])
            .await
            .unwrap(),
        2
    );
    let r = read(&*b, "SELECT * FROM \"Orders\" ORDER BY k").await;
    assert_eq!(r.num_columns(), 1);
    assert_eq!(r.column(0).as_string::<i32>().value(1), "y");
    // Columns the frame leaves out take their defaults.
    b.execute(
        "CREATE TABLE d (id INTEGER PRIMARY KEY, name TEXT, note TEXT DEFAULT 'dflt')",
        vec![],
    )
    .await
    .unwrap();
    let names = batch(vec![(
        "name",
        Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
    )]);
    assert_eq!(
        put(&*b, "d", InsertMode::Append, &[names]).await.unwrap(),
        2
    );
    let r = read(&*b, "SELECT id, note FROM d ORDER BY id").await;
    assert_eq!(r.column(0).as_primitive::<Int64Type>().values(), &[1, 2]);
    assert_eq!(r.column(1).as_string::<i32>().value(0), "dflt");
}

#[tokio::test]
async fn schema_mismatch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    b.execute("CREATE TABLE t (id INTEGER, name TEXT, data BLOB)", vec![])
        .await
        .unwrap();
    b.execute("INSERT INTO t VALUES (1, 'a', x'00')", vec![])
        .await
        .unwrap();
    let ids = || Arc::new(Int64Array::from(vec![2, 3])) as ArrayRef;
    let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1)]), None]);
    let cases: Vec<(RecordBatch, &str, &str)> = vec![
        (
            batch(vec![("id", ids()), ("nope", ids())]),
            "nope",
            "has no column `nope`",
        ),
        (
            batch(vec![(
                "id",
                Arc::new(StringArray::from(vec!["2", "3"])) as ArrayRef,
            )]),
            "id",
            "declared `INTEGER`",
        ),
        (
            batch(vec![(
                "name",
                Arc::new(BinaryArray::from(vec![&b"x"[..], b"y"])) as ArrayRef,
            )]),
            "name",
            "Arrow type Binary",
        ),
        (batch(vec![("name", ids())]), "name", "declared `TEXT`"),
        (
            batch(vec![("data", Arc::new(list) as ArrayRef)]),
            "data",
            "cannot be stored in SQLite",
        ),
    ];
    for (frame, field, message) in cases {
        let e = put(&*b, "t", InsertMode::Append, std::slice::from_ref(&frame))
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), field, "{e}");
        assert!(e.to_string().contains(message), "{e}");
    }
    assert_eq!(count(&*b, "t").await, 1);
    let e = put(
        &*b,
        "missing",
        InsertMode::Append,
        &[batch(vec![("id", ids())])],
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no such table"), "{e}");
}

#[tokio::test]
async fn mid_stream_failure_leaves_the_table_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    b.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE)", vec![])
        .await
        .unwrap();
    b.execute("INSERT INTO t (id) VALUES (1), (2), (3)", vec![])
        .await
        .unwrap();
    let rows = |from: i64, n: i64, day: i32| {
        batch(vec![
            (
                "id",
                Arc::new(Int64Array::from_iter_values(from..from + n)) as ArrayRef,
            ),
            ("d", Arc::new(Date32Array::from(vec![day; n as usize]))),
        ])
    };
    let before = read(&*b, "SELECT * FROM t ORDER BY id").await;
    let fail = || Err(Error::invalid("stream", "client went away"));
    let e = put_stream(
        &*b,
        "t",
        InsertMode::Append,
        vec![Ok(rows(10, 5_000, 0)), fail()],
    )
    .await
    .unwrap_err();
    assert_eq!(invalid_field(&e), "stream");
    let e = put(
        &*b,
        "t",
        InsertMode::Append,
        &[rows(10, 5_000, 0), rows(2, 1, 0)],
    )
    .await
    .unwrap_err();
    assert_eq!(e.db_code(), Some("1555"), "{e}"); // SQLITE_CONSTRAINT_PRIMARYKEY
    let e = put(
        &*b,
        "t",
        InsertMode::Append,
        &[rows(10, 5_000, 0), rows(9_000, 2, i32::MIN)],
    )
    .await
    .unwrap_err();
    assert_eq!(invalid_field(&e), "d");
    assert!(e.to_string().contains("row 5000"), "{e}");
    let e = put_stream(
        &*b,
        "t",
        InsertMode::Replace,
        vec![Ok(rows(1, 5, 0)), fail()],
    )
    .await;
    assert!(e.is_err());
    let e = put_stream(
        &*b,
        "t2",
        InsertMode::Create,
        vec![Ok(rows(1, 5, 0)), fail()],
    )
    .await;
    assert!(e.is_err());
    assert_eq!(read(&*b, "SELECT * FROM t ORDER BY id").await, before);
    assert!(b.query("SELECT * FROM t2", vec![], 10).await.is_err());
    assert_eq!(
        put(&*b, "t", InsertMode::Append, &[rows(4, 2, 19_782)])
            .await
            .unwrap(),
        2
    );
    let r = read(&*b, "SELECT d FROM t WHERE id = 5").await;
    assert_eq!(r.column(0).as_string::<i32>().value(0), "2024-02-29");
}
