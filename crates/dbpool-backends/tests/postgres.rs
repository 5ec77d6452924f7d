//! PostgreSQL backend against the real server: every mapped type with a value and a NULL,
//! parameters, batching, errors.
use arrow::array::*;
use arrow::datatypes::{DataType, Field, TimeUnit};
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{Backend, BackendFactory, Error, Param, Statement};
use dbpool_testkit::PgDb;
use futures::TryStreamExt;
use std::sync::Arc;

async fn backend(url: &str) -> Arc<dyn Backend> {
    backend_with(url, dbpool_config::PoolOptions::default()).await
}

async fn backend_with(url: &str, options: dbpool_config::PoolOptions) -> Arc<dyn Backend> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        options,
        ..Default::default()
    };
    Factory::default()
        .create("t", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

async fn collect(b: &dyn Backend, sql: &str, params: Vec<Param>, batch: usize) -> Vec<RecordBatch> {
    let q = b.query(sql, params, batch).await.unwrap();
    q.batches.try_collect().await.unwrap()
}

fn micros(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros()
}

#[tokio::test]
async fn every_type_with_value_and_null() {
    let db = PgDb::create().await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 real, f8 float8,
           n numeric(10,3), nu numeric, t text, vc varchar(10), c char(3), by bytea, d date, tm time,
           ts timestamp, tz timestamptz, iv interval, ivm interval, u uuid, j json, jb jsonb,
           ai int4[], at text[]);
         INSERT INTO t VALUES (1, true, 12, -34, 9007199254740993, 1.5, 2.25, 1234.567, 3.14,
           'héllo', 'abc', 'ab', '\\x0001ff', '2024-02-29', '13:45:30.5', '2024-02-29 13:45:30.123456',
           '2024-02-29 13:45:30+02', '1 day 02:00:00.5', '1 month 1 second',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": 1}', '{\"a\": 1}', '{1,NULL,3}', '{a,b}');
         INSERT INTO t (id) VALUES (2);",
    )
    .await;
    let b = backend(&db.url).await;
    let batches = collect(&*b, "SELECT * FROM t ORDER BY id", vec![], 100).await;
    assert_eq!(batches.len(), 1);
    let r = &batches[0];
    assert_eq!(r.num_rows(), 2);
    let col = |name: &str| r.column_by_name(name).unwrap().clone();
    let expect = |name: &str, a: ArrayRef| assert_eq!(&col(name), &a, "column {name}");

    expect("b", Arc::new(BooleanArray::from(vec![Some(true), None])));
    expect("i2", Arc::new(Int16Array::from(vec![Some(12), None])));
    expect("i4", Arc::new(Int32Array::from(vec![Some(-34), None])));
    expect(
        "i8",
        Arc::new(Int64Array::from(vec![Some(9007199254740993), None])),
    );
    expect("f4", Arc::new(Float32Array::from(vec![Some(1.5), None])));
    expect("f8", Arc::new(Float64Array::from(vec![Some(2.25), None])));
    expect(
        "n",
        Arc::new(
            Decimal128Array::from(vec![Some(1_234_567), None])
                .with_precision_and_scale(10, 3)
                .unwrap(),
        ),
    );
    expect(
        "nu",
        Arc::new(
            Decimal128Array::from(vec![Some(31_400_000_000), None])
                .with_precision_and_scale(38, 10)
                .unwrap(),
        ),
    );
    expect("t", Arc::new(StringArray::from(vec![Some("héllo"), None])));
    expect("vc", Arc::new(StringArray::from(vec![Some("abc"), None])));
    expect("c", Arc::new(StringArray::from(vec![Some("ab "), None])));
    expect(
        "by",
        Arc::new(BinaryArray::from(vec![Some(&[0u8, 1, 255][..]), None])),
    );
    let days = (chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
    .num_days() as i32;
    expect("d", Arc::new(Date32Array::from(vec![Some(days), None])));
    expect(
        "tm",
        Arc::new(Time64MicrosecondArray::from(vec![
            Some(49_530_500_000),
            None,
        ])),
    );
    expect(
        "ts",
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(micros("2024-02-29T13:45:30.123456Z")),
            None,
        ])),
    );
    expect(
        "tz",
        Arc::new(
            TimestampMicrosecondArray::from(vec![Some(micros("2024-02-29T11:45:30Z")), None])
                .with_timezone("UTC"),
        ),
    );
    expect(
        "iv",
        Arc::new(DurationMicrosecondArray::from(vec![
            Some(93_600_500_000),
            None,
        ])),
    );
    expect(
        "ivm",
        Arc::new(DurationMicrosecondArray::from(vec![
            Some(30 * 86_400_000_000 + 1_000_000),
            None,
        ])),
    );
    expect(
        "u",
        Arc::new(StringArray::from(vec![
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            None,
        ])),
    );
    expect(
        "j",
        Arc::new(StringArray::from(vec![Some("{\"a\": 1}"), None])),
    );
    expect(
        "jb",
        Arc::new(StringArray::from(vec![Some("{\"a\": 1}"), None])),
    );
    let ai = ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>(vec![
        Some(vec![Some(1), None, Some(3)]),
        None,
    ]);
    expect("ai", Arc::new(ai));
    let at = col("at");
    assert_eq!(
        at.data_type(),
        &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
    );
    let at = at.as_list::<i32>();
    assert!(at.is_null(1));
    let first = at.value(0);
    assert_eq!(first.as_string::<i32>(), &StringArray::from(vec!["a", "b"]));
    assert_eq!(
        r.schema().field_with_name("ts").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, None)
    );
}

#[tokio::test]
async fn parameters_bind_by_inferred_type() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE p (i2 int2, i4 int4, n numeric(8,2), d date, ts timestamptz, by bytea, t text, b bool)").await;
    let b = backend(&db.url).await;
    let n = b
        .execute(
            "INSERT INTO p VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Param::Int64(7),
                Param::Int64(-8),
                Param::Decimal("12.34".into()),
                Param::String("2024-01-02".into()),
                Param::TimestampMicros(micros("2024-01-02T03:04:05.000006Z")),
                Param::Bytes(vec![1, 2]),
                Param::Null,
                Param::Bool(true),
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let rows = collect(
        &*b,
        "SELECT i2, n::text AS n, d::text AS d, ts, by, t, b FROM p WHERE i4 = $1",
        vec![Param::Int64(-8)],
        10,
    )
    .await;
    let r = &rows[0];
    assert_eq!(r.num_rows(), 1);
    assert_eq!(
        r.column(0)
            .as_primitive::<arrow::datatypes::Int16Type>()
            .value(0),
        7
    );
    assert_eq!(r.column(1).as_string::<i32>().value(0), "12.34");
    assert_eq!(r.column(2).as_string::<i32>().value(0), "2024-01-02");
    assert_eq!(
        r.column(3)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .value(0),
        micros("2024-01-02T03:04:05.000006Z")
    );
    assert_eq!(r.column(4).as_binary::<i32>().value(0), &[1, 2]);
    assert!(r.column(5).is_null(0));
    // Out of range for int2 is the caller's mistake, named.
    let e = b
        .execute("INSERT INTO p (i2) VALUES ($1)", vec![Param::Int64(70_000)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "params"),
        "{e}"
    );
    // Wrong count.
    let e = b
        .execute("INSERT INTO p (i2) VALUES ($1)", vec![])
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument { .. }), "{e}");
}

#[tokio::test]
async fn large_result_streams_in_order_across_batches() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    let q = b
        .query(
            "SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 100000) g ORDER BY g",
            vec![],
            4096,
        )
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    assert_eq!(batches.len(), 25); // 24 full batches of 4096 and one of 1696
    assert!(batches.iter().all(|b| b.num_rows() <= 4096));
    let mut expected = 1;
    for batch in &batches {
        for v in batch
            .column(0)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .values()
        {
            assert_eq!(*v, expected);
            expected += 1;
        }
    }
    assert_eq!(expected, 100_001);
}

#[tokio::test]
async fn errors_are_classified() {
    let db = PgDb::create().await;
    let b = backend(&db.url).await;
    let e = b
        .query("SELECT * FROM nope", vec![], 10)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Database { code: Some(c), .. } if c == "42P01"),
        "{e}"
    );
    let e = b.execute("SELEC 1", vec![]).await.unwrap_err();
    assert_eq!(e.db_code(), Some("42601"));
    // Nothing listens on port 1.
    let down = backend("postgres://postgres@127.0.0.1:1/postgres").await;
    let e = down.execute("SELECT 1", vec![]).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    assert_eq!(
        e.unavailable_cause(),
        Some(dbpool_core::UnavailableCause::Connect),
        "a refused connect is told apart by type"
    );
    // Bad credentials / missing database are the database's answer at connect time.
    let missing = backend(&format!("{}_missing", db.url)).await;
    let e = missing.execute("SELECT 1", vec![]).await.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable { ref message, .. } if message.contains("does not exist")),
        "{e}"
    );
}

#[tokio::test]
async fn acquire_timeout_when_pool_is_exhausted() {
    let db = PgDb::create().await;
    let options = dbpool_config::PoolOptions {
        max_connections: 1,
        acquire_timeout_ms: 200,
        ..Default::default()
    };
    let b = backend_with(&db.url, options).await;
    // An open transaction holds the only connection.
    let held = b.begin(dbpool_core::TxOptions::default()).await.unwrap();
    let e = b.execute("SELECT 1", vec![]).await.unwrap_err();
    assert!(matches!(e, Error::AcquireTimeout(_)), "{e}");
    assert_eq!(b.state().acquire_timeouts, 1);
    drop(held);
}

#[tokio::test]
async fn transactional_batch_is_all_or_nothing() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE k (id int PRIMARY KEY)").await;
    let b = backend(&db.url).await;
    let st = |sql: &str| Statement {
        sql: sql.into(),
        params: vec![],
    };
    let e = b
        .execute_batch(
            vec![
                st("INSERT INTO k VALUES (1)"),
                st("INSERT INTO k VALUES (2)"),
                st("INSERT INTO k VALUES (1)"),
            ],
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::BatchStatement { index: 2, .. }), "{e}");
    assert_eq!(e.db_code(), Some("23505"));
    let count: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM k", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    let out = b
        .execute_batch(
            vec![
                st("INSERT INTO k VALUES (1)"),
                st("INSERT INTO k VALUES (1)"),
                st("INSERT INTO k VALUES (3)"),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].outcome.as_ref().unwrap(), &1);
    assert_eq!(
        out[1].outcome.as_ref().unwrap_err().db_code(),
        Some("23505")
    );
    assert_eq!(out[2].outcome.as_ref().unwrap(), &1);
}

#[tokio::test]
async fn connections_retire_at_their_age() {
    let db = PgDb::create().await;
    let options = dbpool_config::PoolOptions {
        max_connections: 1,
        max_lifetime_ms: 300,
        ..Default::default()
    };
    let b = backend_with(&db.url, options).await;
    let pid = |batches: Vec<RecordBatch>| {
        let c = batches[0].column(0);
        c.as_any().downcast_ref::<Int32Array>().unwrap().value(0)
    };
    let sql = "SELECT pg_backend_pid()";
    let first = pid(collect(&*b, sql, vec![], 10).await);
    assert_eq!(pid(collect(&*b, sql, vec![], 10).await), first);
    // The connection ages past its lifetime: the passing of time is what is tested
    // here (no event to wait for), not a synchronisation.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Past its (jittered, at most 300 ms) age: replaced at checkout by a new session.
    assert_ne!(pid(collect(&*b, sql, vec![], 10).await), first);
    assert_eq!(b.state().connections_created, 2);
}
