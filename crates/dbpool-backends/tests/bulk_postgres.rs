//! PostgreSQL bulk insert (binary COPY) against the real server: a million rows of every
//! type read back exactly, create/replace/append, schema checks, mid-stream failures.
mod bulk_common;
#[path = "bulk_postgres/every_type.rs"]
mod every_type;

use arrow::array::*;
use arrow::compute::concat_batches;
use arrow::datatypes::*;
use bulk_common::*;
use dbpool_core::{Error, InsertMode};
use dbpool_testkit::PgDb;
use every_type::{every_type, EVERY_TYPE};
use std::sync::Arc;
use std::time::Instant;

#[tokio::test]
async fn a_million_rows_of_every_type_read_back_exactly() {
    const ROWS: usize = 1_000_000;
    const BATCH: usize = 50_000;
    let db = PgDb::create().await;
    db.exec(EVERY_TYPE).await;
    let b = backend(&db.url).await;
    let batches: Vec<RecordBatch> = (0..ROWS)
        .step_by(BATCH)
        .map(|s| every_type(s, BATCH))
        .collect();
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let started = Instant::now();
    let n = put(&*b, "t", InsertMode::Append, &batches).await.unwrap();
    let took = started.elapsed();
    assert_eq!(n, ROWS as u64);
    eprintln!(
        "bulk insert: {ROWS} rows in {took:?} = {:.0} rows/s, {:.1} MB/s of Arrow memory",
        ROWS as f64 / took.as_secs_f64(),
        bytes as f64 / 1e6 / took.as_secs_f64()
    );
    let got = read(&*b, "SELECT * FROM t ORDER BY id").await;
    let want = concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_same(&got, &want);
}

#[tokio::test]
async fn create_replace_and_append() {
    let db = PgDb::create().await;
    db.exec("CREATE SCHEMA sales").await;
    let b = backend(&db.url).await;
    let first = every_type(0, 100);
    // Create: the table comes from the schema; uuid/json become text.
    assert_eq!(
        put(
            &*b,
            "sales.Orders",
            InsertMode::Create,
            std::slice::from_ref(&first)
        )
        .await
        .unwrap(),
        100
    );
    let got = read(&*b, "SELECT * FROM sales.\"Orders\" ORDER BY id").await;
    assert_same(&got, &first);
    // Create again: the table exists (42P07), nothing changes.
    let e = put(
        &*b,
        "sales.Orders",
        InsertMode::Create,
        std::slice::from_ref(&first),
    )
    .await
    .unwrap_err();
    assert_eq!(e.db_code(), Some("42P07"), "{e}");
    // Append adds rows.
    let more = every_type(100, 50);
    assert_eq!(
        put(&*b, "sales.Orders", InsertMode::Append, &[more])
            .await
            .unwrap(),
        50
    );
    assert_eq!(count(&*b, "sales.\"Orders\"").await, 150);
    // Replace drops and recreates with another schema.
    let other = batch(vec![
        ("k", Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef),
        ("v", Arc::new(Int16Array::from(vec![Some(1), None]))),
    ]);
    assert_eq!(
        put(
            &*b,
            "sales.Orders",
            InsertMode::Replace,
            std::slice::from_ref(&other)
        )
        .await
        .unwrap(),
        2
    );
    assert_same(
        &read(&*b, "SELECT * FROM sales.\"Orders\" ORDER BY k").await,
        &other,
    );
    // Replace also creates a table that is not there; zero batches create it empty.
    let none: Vec<RecordBatch> = vec![other.slice(0, 0)];
    assert_eq!(
        put(&*b, "fresh", InsertMode::Replace, &none).await.unwrap(),
        0
    );
    assert_eq!(count(&*b, "fresh").await, 0);
}

#[tokio::test]
async fn polars_and_pyarrow_types_are_normalized() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    let ns = TimestampNanosecondArray::from(vec![Some(1_709_214_330_123_456_789), None])
        .with_timezone("Europe/Paris");
    let dict: DictionaryArray<Int8Type> = vec![Some("a"), None].into_iter().collect();
    let ll =
        LargeListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1)]), None]);
    let frame = batch(vec![
        (
            "s",
            Arc::new(StringViewArray::from(vec![Some("x"), None])) as ArrayRef,
        ),
        (
            "ls",
            Arc::new(LargeStringArray::from(vec![Some("y"), None])),
        ),
        ("ts", Arc::new(ns)),
        ("u8", Arc::new(UInt8Array::from(vec![Some(255), None]))),
        (
            "u32",
            Arc::new(UInt32Array::from(vec![Some(u32::MAX), None])),
        ),
        ("dict", Arc::new(dict)),
        ("ll", Arc::new(ll)),
        (
            "dur",
            Arc::new(DurationNanosecondArray::from(vec![Some(1_500), None])),
        ),
        ("nul", Arc::new(NullArray::new(2))),
    ]);
    // An all-NULL column has no type to create from; everything else does.
    let e = put(&*b, "p", InsertMode::Create, std::slice::from_ref(&frame))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), "nul", "{e}");
    db.exec("CREATE TABLE p (s text, ls varchar, ts timestamptz, u8 int2, u32 int8, dict text, ll int8[], dur interval, nul int4)").await;
    assert_eq!(
        put(&*b, "p", InsertMode::Append, &[frame]).await.unwrap(),
        2
    );
    let r = read(&*b, "SELECT * FROM p").await;
    let ts = r
        .column_by_name("ts")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), 1_709_214_330_123_456);
    assert_eq!(
        r.column_by_name("u32")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        u32::MAX as i64
    );
    assert_eq!(
        r.column_by_name("dict")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "a"
    );
    assert_eq!(
        r.column_by_name("dur")
            .unwrap()
            .as_primitive::<DurationMicrosecondType>()
            .value(0),
        1
    );
    assert_eq!(r.column_by_name("nul").unwrap().null_count(), 2);
    for c in r.columns() {
        assert!(c.is_null(1));
    }
}

#[tokio::test]
async fn what_query_returns_bulk_insert_accepts() {
    let db = PgDb::create().await;
    let ddl = "(id int, nu numeric, wide numeric(50,5), c char(3), tt timetz, ivm interval,
        mood mood, pos posint, ip inet, x xml, moods mood[])";
    db.exec(&format!(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
         CREATE TABLE src {ddl}; CREATE TABLE dst {ddl};
         INSERT INTO src VALUES (1, 3.14, 123456789012345678901234567890123456789012345.12345,
           'ab', '13:45:30+02', '1 month 1 second', 'happy', 7, '10.0.0.1/8', '<a>1</a>',
           '{{sad,happy}}'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    ))
    .await;
    let b = backend(&db.url).await;
    let src = read(&*b, "SELECT * FROM src ORDER BY id").await;
    assert_eq!(
        put(&*b, "dst", InsertMode::Append, std::slice::from_ref(&src))
            .await
            .unwrap(),
        2
    );
    assert_same(&read(&*b, "SELECT * FROM dst ORDER BY id").await, &src);
    // The domain's CHECK still applies: the whole insert fails, nothing is written.
    let bad = batch(vec![(
        "pos",
        Arc::new(Int32Array::from(vec![5, -1])) as ArrayRef,
    )]);
    let e = put(&*b, "dst", InsertMode::Append, &[bad])
        .await
        .unwrap_err();
    assert_eq!(e.db_code(), Some("23514"), "{e}");
    assert_eq!(count(&*b, "dst").await, 2);
}

#[tokio::test]
async fn schema_mismatch_writes_nothing() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int4, name text, ok bool); INSERT INTO t VALUES (1, 'a', true)")
        .await;
    let b = backend(&db.url).await;
    let ids = || Arc::new(Int32Array::from(vec![2, 3])) as ArrayRef;
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
            "Arrow type Utf8 cannot be written into column `id` of PostgreSQL type int4",
        ),
        (batch(vec![("ok", ids())]), "ok", "type bool"),
        (
            batch(vec![(
                "name",
                Arc::new(StructArray::from(vec![(
                    Arc::new(Field::new("a", DataType::Int32, true)),
                    ids(),
                )])) as ArrayRef,
            )]),
            "name",
            "cannot be bulk-inserted",
        ),
    ];
    for (frame, field, message) in cases {
        let e = put(&*b, "t", InsertMode::Append, &[frame])
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), field, "{e}");
        assert!(e.to_string().contains(message), "{e}");
    }
    // Replace refuses unsupported types before dropping anything.
    let st = batch(vec![(
        "s",
        Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("a", DataType::Int32, true)),
            ids(),
        )])) as ArrayRef,
    )]);
    assert!(put(&*b, "t", InsertMode::Replace, &[st]).await.is_err());
    assert_eq!(count(&*b, "t").await, 1);
    let e = put(
        &*b,
        "missing",
        InsertMode::Append,
        &[batch(vec![("id", ids())])],
    )
    .await
    .unwrap_err();
    assert_eq!(e.db_code(), Some("42P01"), "{e}");
    let e = put(
        &*b,
        "a.b.c",
        InsertMode::Append,
        &[batch(vec![("id", ids())])],
    )
    .await
    .unwrap_err();
    assert_eq!(invalid_field(&e), "table");
}

#[tokio::test]
async fn mid_stream_failure_leaves_the_table_as_it_was() {
    let db = PgDb::create().await;
    db.exec(
        "CREATE TABLE t (id int8 PRIMARY KEY, small int2, note text DEFAULT 'dflt');
             INSERT INTO t (id, small) SELECT g, 1 FROM generate_series(1, 10) g",
    )
    .await;
    let b = backend(&db.url).await;
    let rows = |from: i64, n: i64, small: i32| {
        batch(vec![
            (
                "id",
                Arc::new(Int64Array::from_iter_values(from..from + n)) as ArrayRef,
            ),
            ("small", Arc::new(Int32Array::from(vec![small; n as usize]))),
        ])
    };
    let before = read(&*b, "SELECT * FROM t ORDER BY id").await;
    // The client's stream fails after 20,000 rows went out.
    let e = put_stream(
        &*b,
        "t",
        InsertMode::Append,
        vec![
            Ok(rows(100, 20_000, 2)),
            Err(Error::invalid("stream", "client went away")),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(invalid_field(&e), "stream");
    // A value that does not fit the column, in the second batch.
    let e = put(
        &*b,
        "t",
        InsertMode::Append,
        &[rows(100, 20_000, 2), rows(30_000, 5, 40_000)],
    )
    .await
    .unwrap_err();
    assert_eq!(invalid_field(&e), "small");
    assert!(
        e.to_string()
            .contains("row 20000: 40000 is out of range for int2"),
        "{e}"
    );
    // The database refuses a row (duplicate key) after thousands were accepted.
    let e = put(
        &*b,
        "t",
        InsertMode::Append,
        &[rows(100, 20_000, 2), rows(5, 1, 2)],
    )
    .await
    .unwrap_err();
    assert_eq!(e.db_code(), Some("23505"), "{e}");
    // Replace and create roll back too: the old table stays, the new one never appears.
    let e = put_stream(
        &*b,
        "t",
        InsertMode::Replace,
        vec![Ok(rows(1, 10, 3)), Err(Error::invalid("stream", "x"))],
    )
    .await;
    assert!(e.is_err());
    let e = put_stream(
        &*b,
        "t2",
        InsertMode::Create,
        vec![Ok(rows(1, 10, 3)), Err(Error::invalid("stream", "x"))],
    )
    .await;
    assert!(e.is_err());
    assert_eq!(read(&*b, "SELECT * FROM t ORDER BY id").await, before);
    let e = b.query("SELECT * FROM t2", vec![], 10).await.err().unwrap();
    assert_eq!(e.db_code(), Some("42P01"));
    // The pooled connections are fine afterwards, and missing columns take defaults.
    assert_eq!(
        put(&*b, "t", InsertMode::Append, &[rows(11, 2, 9)])
            .await
            .unwrap(),
        2
    );
    let r = read(&*b, "SELECT note FROM t WHERE id = 12").await;
    assert_eq!(r.column(0).as_string::<i32>().value(0), "dflt");
}
