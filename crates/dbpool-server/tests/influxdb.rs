//! InfluxDB end to end through the server: a Polars-shaped DataFrame in over Flight
//! DoPut, InfluxQL out over gRPC Query and Flight DoGet, errors as gRPC statuses; a
//! dropped stream aborts its query on the server.
//! Needs DBPOOL_TEST_INFLUX_URL (scripts/influxdb.sh); fails when it is unset.
mod common;

use arrow::array::*;
use arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{FlightDescriptor, PutResult, Ticket};
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::{BulkInsertCommand, BulkInsertResult, InsertMode, QueryTicket};
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::Code;

fn base_url() -> String {
    std::env::var("DBPOOL_TEST_INFLUX_URL").unwrap_or_else(|_| {
        panic!(
            "DBPOOL_TEST_INFLUX_URL is not set: start the test servers with \
             `eval \"$(scripts/influxdb.sh start)\"`"
        )
    })
}

/// Settings of an admin pool: creating and dropping databases is denied by default.
fn admin_settings() -> std::collections::BTreeMap<String, String> {
    [(
        "allowed_statements".to_string(),
        "CREATE DATABASE, DROP DATABASE".to_string(),
    )]
    .into()
}

/// Drops the test database on drop, also when the test failed.
struct DropDb(String);

impl Drop for DropDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE {}", self.0);
        dbpool_testkit::block_on_detached(async move {
            use dbpool_core::BackendFactory;
            let cfg = dbpool_config::PoolConfig {
                url: Some(dbpool_config::Secret::new(base_url())),
                settings: admin_settings(),
                ..Default::default()
            };
            let Ok(resolved) = cfg.resolve("") else {
                return;
            };
            if let Ok(admin) = dbpool_backends::Factory::default()
                .create("drop", &resolved)
                .await
            {
                let _ = admin.execute(&sql, vec![]).await;
            }
        });
    }
}

/// What `polars.DataFrame.to_arrow()` sends: string views and ns timestamps.
fn frame() -> RecordBatch {
    let at = TimestampNanosecondArray::from_iter_values((1..=6).map(|i| i * 1_000_000_000))
        .with_timezone("UTC");
    RecordBatch::try_from_iter_with_nullable(vec![
        ("time", Arc::new(at) as ArrayRef, false),
        (
            "host",
            Arc::new(StringViewArray::from(vec!["a", "b", "a", "b", "a", "b"])),
            false,
        ),
        (
            "load",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(2.0),
                None,
                Some(4.0),
                Some(5.0),
                Some(6.5),
            ])),
            true,
        ),
        (
            "note",
            Arc::new(StringViewArray::from(vec![
                Some("ok"),
                None,
                Some("über \"x\""),
                None,
                None,
                None,
            ])),
            true,
        ),
    ])
    .unwrap()
}

type PoolClient = pb::pool_service_client::PoolServiceClient<tonic::transport::Channel>;

#[tokio::test]
async fn dataframe_in_time_series_out() {
    let base = base_url();
    let db = dbpool_testkit::unique_name("dbpool_t");
    let server = TestServer::start_with(
        &[
            ("admin", base.as_str()),
            ("influx", &format!("{base}/{db}")),
            ("missing", &format!("{base}/{db}_missing")),
        ],
        |c| {
            let p = c.pools.get_mut("influx").unwrap();
            p.settings.insert("tag_columns".into(), "host".into());
            c.pools.get_mut("admin").unwrap().settings = admin_settings();
        },
    )
    .await;
    let mut c = server.pools().await;
    execute(&mut c, "admin", &format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let _drop = DropDb(db.clone());

    // DataFrame in: tags from the pool's settings, the time column by its default name.
    let mut f = server.flight().await;
    let cmd = BulkInsertCommand {
        pool_id: "influx".into(),
        table: "cpu".into(),
        mode: InsertMode::Create as i32,
    };
    // Wrapped in an Any, the Flight SQL convention for custom commands.
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: cmd.encode_to_vec(),
    };
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(any.encode_to_vec())))
        .build(futures::stream::iter([Ok(frame())]));
    let results: Vec<PutResult> = f.do_put(data).await.unwrap().try_collect().await.unwrap();
    let r = BulkInsertResult::decode(results[0].app_metadata.clone()).unwrap();
    assert_eq!(r.rows_inserted, 6);

    // Line protocol through Execute.
    let n = execute(&mut c, "influx", "cpu,host=c load=9 7000000000")
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Time series out over gRPC: GROUP BY series flattened into tag columns.
    let batches = query_ipc(
        &mut c,
        "influx",
        "SELECT mean(load) FROM cpu GROUP BY host",
        vec![],
    )
    .await
    .unwrap();
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let hosts = arrow::compute::cast(b.column_by_name("host").unwrap(), &DataType::Utf8).unwrap();
    let hosts: Vec<_> = hosts.as_string::<i32>().iter().flatten().collect();
    assert_eq!(hosts, ["a", "b", "c"]);
    let means = b
        .column_by_name("mean")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(means.values(), &[3.0, 4.166666666666667, 9.0]);

    // And over Flight DoGet, in small batches.
    let ticket = QueryTicket {
        pool_id: "influx".into(),
        sql: "SELECT load, note FROM cpu WHERE host = $1".into(),
        params: vec![p_str("a")],
        batch_size: 2,
        ..Default::default()
    };
    let batches: Vec<RecordBatch> = f
        .do_get(Ticket::new(ticket.encode_to_vec()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.len(), 2);
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let times = b
        .column_by_name("time")
        .unwrap()
        .as_primitive::<TimestampNanosecondType>();
    assert_eq!(
        times.values(),
        &[1_000_000_000, 3_000_000_000, 5_000_000_000]
    );
    assert_eq!(times.timezone(), Some("UTC"));
    let notes = b.column_by_name("note").unwrap().as_string::<i32>();
    assert_eq!(
        notes.iter().collect::<Vec<_>>(),
        [Some("ok"), Some("über \"x\""), None]
    );

    // InfluxDB's errors as statuses: in a 200 body, a 400, no transactions.
    let s = query_ipc(&mut c, "missing", "SELECT * FROM cpu", vec![])
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("database not found"), "{s:?}");
    let s = execute(&mut c, "influx", "SELECT FROM").await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("error parsing query"), "{s:?}");
    let s = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "influx".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unimplemented, "{s:?}");
}

/// Queries InfluxDB is running on database `db` (SHOW QUERIES, on the admin pool).
async fn running_on(c: &mut PoolClient, db: &str) -> Vec<String> {
    let batches = query_ipc(c, "admin", "SHOW QUERIES", vec![]).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let text = |name: &str| {
            let col = b.column_by_name(name).expect(name);
            arrow::compute::cast(col, &DataType::Utf8).unwrap()
        };
        let (query, database) = (text("query"), text("database"));
        let (query, database) = (query.as_string::<i32>(), database.as_string::<i32>());
        for i in 0..b.num_rows() {
            if database.value(i) == db {
                out.push(query.value(i).to_string());
            }
        }
    }
    out
}

/// A stream dropped mid-result aborts its HTTP request: InfluxDB stops the query (it
/// leaves SHOW QUERIES) and the pool's request slot comes back.
#[tokio::test]
async fn a_dropped_stream_aborts_the_query() {
    const POINTS: usize = 500_000;
    let base = base_url();
    let db = dbpool_testkit::unique_name("dbpool_t");
    let server = TestServer::start_with(
        &[
            ("admin", base.as_str()),
            ("influx", &format!("{base}/{db}")),
        ],
        |c| {
            c.pools.get_mut("influx").unwrap().options.max_connections = 1;
            c.pools.get_mut("admin").unwrap().settings = admin_settings();
        },
    )
    .await;
    let mut c = server.pools().await;
    execute(&mut c, "admin", &format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let _drop = DropDb(db.clone());
    // Writes of 25,000 lines (~660 KB): under server.limits.max_sql_bytes (1 MiB).
    for chunk in 0..POINTS / 25_000 {
        let lines: Vec<String> = (0..25_000)
            .map(|i| {
                let n = chunk * 25_000 + i;
                format!("m,t=a v={n}i {}", 1_000_000_000 + n as u64 * 1_000_000)
            })
            .collect();
        let written = execute(&mut c, "influx", &lines.join("\n")).await.unwrap();
        assert_eq!(written, 25_000);
    }

    let mut f = server.flight().await;
    let ticket = QueryTicket {
        pool_id: "influx".into(),
        sql: "SELECT v FROM m".into(),
        batch_size: 1000,
        ..Default::default()
    };
    let mut stream = f.do_get(Ticket::new(ticket.encode_to_vec())).await.unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 1000);
    // The reader stalls: InfluxDB's query waits to write the rest of its answer.
    wait_until(WAIT, "the query to show in SHOW QUERIES", || {
        let mut c = c.clone();
        let db = db.clone();
        async move {
            running_on(&mut c, &db)
                .await
                .iter()
                .any(|q| q.contains("FROM m"))
        }
    })
    .await;
    drop(stream);
    wait_until(WAIT, "InfluxDB to stop the dropped stream's query", || {
        let mut c = c.clone();
        let db = db.clone();
        async move { running_on(&mut c, &db).await.is_empty() }
    })
    .await;
    // The slot comes back when the aborted request's task has let go of it, which may be
    // a moment after InfluxDB forgot the query: wait for that event too.
    let s = wait_status(&c, "influx", "the request slot back in the pool", |s| {
        s.in_use == 0
    })
    .await;
    assert_eq!((s.in_use, s.idle), (0, 1), "{s:?}");
    let batches = query_ipc(&mut c, "influx", "SELECT count(v) FROM m", vec![])
        .await
        .unwrap();
    let count = arrow::compute::cast(
        batches[0].column_by_name("count").unwrap(),
        &DataType::Int64,
    )
    .unwrap();
    assert_eq!(
        count.as_primitive::<arrow::datatypes::Int64Type>().value(0),
        POINTS as i64
    );
}
