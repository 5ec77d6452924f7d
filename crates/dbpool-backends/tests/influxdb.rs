//! InfluxDB 1.x backend against real servers started by scripts/influxdb.sh (env
//! DBPOOL_TEST_INFLUX_URL and DBPOOL_TEST_INFLUX_AUTH_URL): field types, GROUP BY,
//! chunked streaming, in-body errors; writes (escaping, bulk insert) and auth in
//! `influxdb/writes.rs`; a scripted fake server for huge bodies and redirects in
//! `influxdb/http.rs`. Each test has its own database, dropped at the end.
use arrow::array::*;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimestampNanosecondType};
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{
    Backend, BackendFactory, BulkInsert, Error, InsertMode, Param, QueryStream, Statement,
};
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Duration;

#[path = "influxdb/http.rs"]
mod http;
#[path = "influxdb/writes.rs"]
mod writes;

fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers with `eval \"$(scripts/influxdb.sh start)\"`"
        )
    })
}

/// Settings of an admin pool: creating and dropping databases is denied by default.
const ADMIN: &[(&str, &str)] = &[("allowed_statements", "CREATE DATABASE, DROP DATABASE")];

async fn backend_with(url: &str, settings: &[(&str, &str)], max: u32) -> Arc<dyn Backend> {
    let mut cfg = PoolConfig {
        url: Some(Secret::new(url)),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    cfg.options.max_connections = max;
    cfg.options.acquire_timeout_ms = 500;
    Factory::default()
        .create("t", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

/// A uniquely named database on the server without auth, dropped on drop.
struct InfluxDb {
    name: String,
    url: String,
}

impl InfluxDb {
    async fn create() -> InfluxDb {
        let base = env_url("DBPOOL_TEST_INFLUX_URL");
        let name = dbpool_testkit::unique_name("dbpool_t");
        let admin = backend_with(&base, ADMIN, 1).await;
        admin
            .execute(&format!("CREATE DATABASE {name}"), vec![])
            .await
            .unwrap();
        InfluxDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    async fn backend(&self, settings: &[(&str, &str)]) -> Arc<dyn Backend> {
        backend_with(&self.url, settings, 4).await
    }
}

impl Drop for InfluxDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE {}", self.name);
        dbpool_testkit::block_on_detached(async move {
            let admin = backend_with(&env_url("DBPOOL_TEST_INFLUX_URL"), ADMIN, 1).await;
            let _ = admin.execute(&sql, vec![]).await;
        });
    }
}

async fn collect(b: &dyn Backend, sql: &str, batch: usize) -> (Arc<Schema>, Vec<RecordBatch>) {
    let q = b.query(sql, vec![], batch).await.unwrap();
    (q.schema, q.batches.try_collect().await.unwrap())
}

async fn one(b: &dyn Backend, sql: &str) -> RecordBatch {
    let (schema, batches) = collect(b, sql, 100_000).await;
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

fn strings(batch: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = arrow::compute::cast(batch.column_by_name(col).unwrap(), &DataType::Utf8).unwrap();
    a.as_string::<i32>()
        .iter()
        .map(|s| s.map(String::from))
        .collect()
}

#[tokio::test]
async fn every_field_type_with_missing_values() {
    let db = InfluxDb::create().await;
    let b = db.backend(&[]).await;
    let n = b
        .execute(
            "m f=1.0,i=-2i,s=\"x\",b=true 1000\n\
             m f=2.5 2000\n\
             # a comment\n\
             m i=9007199254740993i,s=\"\",b=false 3000",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let r = one(&*b, "SELECT time, f, i, s, b FROM m").await;
    let types: Vec<String> = r
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            "_measurement:Dictionary(Int32, Utf8)",
            "time:Timestamp(ns, \"UTC\")",
            "f:Float64",
            "i:Int64",
            "s:Utf8",
            "b:Boolean",
        ]
    );
    let col = |n: &str| r.column_by_name(n).unwrap().clone();
    assert_eq!(
        col("time")
            .as_primitive::<TimestampNanosecondType>()
            .values(),
        &[1000, 2000, 3000]
    );
    assert_eq!(
        &col("f"),
        &(Arc::new(Float64Array::from(vec![Some(1.0), Some(2.5), None])) as ArrayRef)
    );
    assert_eq!(
        &col("i"),
        &(Arc::new(Int64Array::from(vec![
            Some(-2),
            None,
            Some(9007199254740993)
        ])) as ArrayRef)
    );
    assert_eq!(
        &col("s"),
        &(Arc::new(StringArray::from(vec![Some("x"), None, Some("")])) as ArrayRef)
    );
    assert_eq!(
        &col("b"),
        &(Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])) as ArrayRef)
    );
    assert_eq!(strings(&r, "_measurement"), vec![Some("m".to_string()); 3]);

    // Bound parameters: $1, $2 … in order.
    let q = b
        .query(
            "SELECT f FROM m WHERE time >= $1 AND f > $2",
            vec![Param::TimestampMicros(1), Param::Double(2.0)],
            10,
        )
        .await
        .unwrap();
    let got: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}

#[tokio::test]
async fn group_by_flattens_series_into_tag_columns() {
    let db = InfluxDb::create().await;
    let b = db.backend(&[]).await;
    b.execute(
        "cpu,host=a,dc=eu v=1i 1\ncpu,host=a,dc=eu v=3i 2\ncpu,host=b,dc=us v=10i 1\ncpu,host=c v=4i 1",
        vec![],
    )
    .await
    .unwrap();
    let r = one(&*b, "SELECT mean(v), count(v) FROM cpu GROUP BY host, dc").await;
    let names: Vec<String> = r
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["_measurement", "dc", "host", "time", "mean", "count"]
    );
    assert!(matches!(
        r.schema().field(2).data_type(),
        DataType::Dictionary(..)
    ));
    let (host, dc) = (strings(&r, "host"), strings(&r, "dc"));
    let mean = r
        .column_by_name("mean")
        .unwrap()
        .as_primitive::<Float64Type>()
        .clone();
    let count = r
        .column_by_name("count")
        .unwrap()
        .as_primitive::<Int64Type>()
        .clone();
    let mut rows: Vec<_> = (0..r.num_rows())
        .map(|i| {
            (
                host[i].clone().unwrap(),
                dc[i].clone(),
                mean.value(i),
                count.value(i),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        [
            ("a".to_string(), Some("eu".to_string()), 2.0, 2),
            ("b".to_string(), Some("us".to_string()), 10.0, 1),
            ("c".to_string(), None, 4.0, 1),
        ]
    );

    // Raw points grouped by every tag keep the field's integer type.
    let r = one(&*b, "SELECT v FROM cpu GROUP BY *").await;
    assert_eq!(r.num_rows(), 4);
    assert_eq!(r.column_by_name("v").unwrap().data_type(), &DataType::Int64);

    // SHOW statements: one series per measurement, values as columns.
    // Series without a name have a NULL measurement.
    let r = one(&*b, "SHOW QUERIES").await;
    // (Other tests' queries may be running too.)
    assert!(strings(&r, "_measurement").iter().all(Option::is_none));
    assert!(strings(&r, "query").contains(&Some("SHOW QUERIES".into())));
    let r = one(&*b, "SHOW TAG KEYS").await;
    assert_eq!(
        strings(&r, "tagKey"),
        [Some("dc".into()), Some("host".into())]
    );
}

#[tokio::test]
async fn large_results_stream_in_chunks() {
    let db = InfluxDb::create().await;
    let b = db.backend(&[("write_batch_lines", "20000")]).await;
    const N: i64 = 200_000;
    let schema = Arc::new(Schema::new(vec![
        Field::new("time", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batches: Vec<dbpool_core::Result<RecordBatch>> = (0..N / 50_000)
        .map(|k| {
            let ids = k * 50_000..(k + 1) * 50_000;
            Ok(RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(ids.clone().map(|i| i * 1000))),
                    Arc::new(Int64Array::from_iter_values(ids)),
                ],
            )
            .unwrap())
        })
        .collect();
    let target = BulkInsert {
        table: "big".into(),
        mode: InsertMode::Append,
    };
    let n = b
        .bulk_insert(
            target,
            QueryStream {
                schema,
                batches: Box::pin(futures::stream::iter(batches)),
            },
        )
        .await
        .unwrap();
    assert_eq!(n, N as u64);

    let q = b.query("SELECT v FROM big", vec![], 10_000).await.unwrap();
    let mut s = q.batches;
    let (mut next, mut count) = (0i64, 0usize);
    while let Some(batch) = s.try_next().await.unwrap() {
        assert!(batch.num_rows() <= 10_000);
        count += 1;
        for v in batch
            .column_by_name("v")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
        {
            assert_eq!(*v, next);
            next += 1;
        }
    }
    assert_eq!(next, N);
    assert!(count >= 20, "{count} batches");
}

#[tokio::test]
async fn errors_inside_200_responses_and_statuses() {
    let db = InfluxDb::create().await;
    let base = env_url("DBPOOL_TEST_INFLUX_URL");
    let missing = backend_with(&format!("{base}/no_such_db_{}", db.name), &[], 2).await;
    let e = missing
        .query("SELECT * FROM m", vec![], 10)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Database { message, .. } if message.contains("database not found")),
        "{e:?}"
    );
    let e = missing.execute("m f=1", vec![]).await.unwrap_err();
    assert!(
        matches!(&e, Error::Database { message, code: Some(c) } if message.contains("database not found") && c == "404"),
        "{e:?}"
    );

    let b = db.backend(&[]).await;
    let e = b.query("SELEC * FROM m", vec![], 10).await.err().unwrap();
    assert!(
        matches!(&e, Error::Database { code: Some(c), message } if c == "400" && message.contains("SELEC")),
        "{e:?}"
    );
    let e = b.execute("m f=", vec![]).await.unwrap_err();
    assert!(
        matches!(&e, Error::Database { code: Some(c), .. } if c == "400"),
        "{e:?}"
    );
    // A later statement's error ends the stream with that error.
    b.execute("m f=1 1", vec![]).await.unwrap();
    let q = b
        .query(
            &format!(
                "SELECT f FROM m; SELECT f FROM \"{}\".\"autogen\".m; SELECT * FROM nodb.autogen.m",
                db.name
            ),
            vec![],
            10,
        )
        .await
        .unwrap();
    let e = q.batches.try_collect::<Vec<_>>().await.unwrap_err();
    assert!(
        matches!(&e, Error::Database { message, .. } if message.contains("database not found: nodb")),
        "{e:?}"
    );

    // Nothing listens on port 1.
    let down = backend_with("influxdb://127.0.0.1:1/x", &[], 1).await;
    assert!(matches!(
        down.health_check().await,
        Err(Error::Unavailable { .. })
    ));

    assert!(matches!(
        b.begin(Default::default()).await.err().unwrap(),
        Error::Unsupported(_)
    ));
    let stmt = |s: &str| Statement {
        sql: s.into(),
        params: vec![],
    };
    assert!(matches!(
        b.execute_batch(vec![stmt("m f=1")], true).await,
        Err(Error::Unsupported(_))
    ));
    let out = b
        .execute_batch(
            vec![
                stmt("m f=2 5"),
                stmt("SELECT * INTO m2 FROM m"),
                stmt("bad line"),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(out[0].outcome.as_ref().unwrap(), &1);
    assert_eq!(
        out[1].outcome.as_ref().unwrap(),
        &2,
        "SELECT INTO reports the points written"
    );
    assert!(out[2].outcome.is_err());
}

/// The request slots are a pool like the others, with its bounded queue: beyond
/// `max_waiters` callers waiting for a slot, a call is refused at once.
#[tokio::test]
async fn a_full_pool_refuses_beyond_max_waiters() {
    let db = InfluxDb::create().await;
    let mut cfg = PoolConfig {
        url: Some(Secret::new(db.url.clone())),
        ..Default::default()
    };
    cfg.options.max_connections = 1;
    cfg.options.max_waiters = 1;
    cfg.options.acquire_timeout_ms = 60_000;
    let b = Factory::default()
        .create("t", &cfg.resolve("").unwrap())
        .await
        .unwrap();
    let points: Vec<String> = (1..=10).map(|i| format!("m v={i} {i}")).collect();
    b.execute(&points.join("\n"), vec![]).await.unwrap();
    // A stream read one row at a time, and not read: it holds the only slot.
    let held = b.query("SELECT v FROM m", vec![], 1).await.unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.execute("m v=11 11", vec![]).await })
    };
    let queued = || b.state().waiters == 1;
    dbpool_testkit::wait_until_sync(Duration::from_secs(6), "the writer queued", queued).await;
    let e = b.execute("m v=12 12", vec![]).await.unwrap_err();
    assert!(
        matches!(&e, Error::ResourceExhausted(m) if m.contains("max_waiters")),
        "{e:?}"
    );
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    assert_eq!(b.state().waiters, 0);
}
