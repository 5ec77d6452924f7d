//! Redis end to end through the real server: PoolService Execute/Query/ExecuteBatch,
//! Flight DoPut into hashes and DoGet of a pattern read, and the gRPC codes of denied
//! commands, WRONGTYPE, a refused connection and BeginTransaction; a command abandoned
//! at the caller's deadline closes its connection.
mod common;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{FlightDescriptor, PutResult, Ticket};
use common::*;
use dbpool_backends::redis::RedisBackend;
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::Executor;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::{BulkInsertCommand, BulkInsertResult, QueryTicket};
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::Code;
use tonic_types::StatusExt;

fn redis_url() -> String {
    std::env::var("DBPOOL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A unique key prefix; every key under it is deleted on drop, also after a failure.
struct Prefix(String);

impl Prefix {
    fn new() -> Prefix {
        Prefix(format!("{}:", dbpool_testkit::unique_name("dbpool_test")))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.0);
        // Drop may run inside the test's runtime: clean up from a thread of our own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let cfg = PoolConfig {
                    url: Some(Secret::new(redis_url())),
                    ..Default::default()
                };
                let b = RedisBackend::new("cleanup", &cfg.resolve("").unwrap()).unwrap();
                let q = b.query(
                    "SCAN_KEYS $1",
                    vec![dbpool_core::Param::String(pattern)],
                    1000,
                );
                let batches: Vec<RecordBatch> =
                    q.await.unwrap().batches.try_collect().await.unwrap();
                for batch in batches {
                    let keys = batch.column(0).as_string::<i32>();
                    let params = keys
                        .iter()
                        .flatten()
                        .map(|k| dbpool_core::Param::String(k.into()));
                    b.execute("UNLINK", params.collect()).await.unwrap();
                }
            })
        })
        .join()
        .unwrap();
    }
}

fn exec(pool: &str, sql: &str, params: Vec<pb::Param>) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        pool_id: pool.into(),
        sql: sql.into(),
        params,
        ..Default::default()
    }
}

fn reason(s: &tonic::Status) -> (String, std::collections::HashMap<String, String>) {
    let info = s.get_details_error_info().unwrap();
    (info.reason, info.metadata)
}

#[tokio::test]
async fn redis_over_pool_service() {
    let p = Prefix::new();
    let server = TestServer::start_with(&[("r", &redis_url()), ("strict", &redis_url())], |c| {
        // A denylist of its own: the operator's, so from the config file.
        let p = c.pools.get_mut("strict").unwrap();
        p.settings
            .insert("denied_commands".into(), "GET,HGETALL".into());
    })
    .await;
    let mut c = server.pools().await;
    let h = format!("{}h", p.0);
    let n = c
        .execute(exec(
            "r",
            "HSET $1 name $2 age $3",
            vec![p_str(&h), p_str("ann"), p_int(41)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.rows_affected, 2);
    let got = query_ipc(&mut c, "r", &format!("HGETALL \"{h}\""), vec![])
        .await
        .unwrap();
    let r = &got[0];
    assert_eq!(r.schema().field(0).name(), "field");
    assert_eq!(r.num_rows(), 2);
    // A pipeline, then MULTI/EXEC whose second command fails with WRONGTYPE.
    let st = |sql: String| pb::Statement {
        sql,
        params: vec![],
    };
    let batch = |statements, transaction| pb::ExecuteBatchRequest {
        pool_id: "r".into(),
        statements,
        transaction,
    };
    let out = c
        .execute_batch(batch(
            vec![st(format!("INCR {}n", p.0)), st(format!("LPUSH {h} x"))],
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(out.results[0].ok && !out.results[1].ok);
    assert_eq!(out.results[1].code, "WRONGTYPE");
    let e = c
        .execute_batch(batch(
            vec![st(format!("INCR {}n", p.0)), st(format!("LPUSH {h} x"))],
            true,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let (_, meta) = reason(&e);
    assert_eq!(
        (meta["statement_index"].as_str(), meta["sqlstate"].as_str()),
        ("1", "WRONGTYPE")
    );
    // WRONGTYPE on its own: INVALID_ARGUMENT with the code.
    let e = c
        .execute(exec("r", &format!("LPUSH {h} x"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(reason(&e).1["sqlstate"], "WRONGTYPE");
    // The denylist: PERMISSION_DENIED.
    let e = c.execute(exec("r", "FLUSHALL", vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert_eq!(reason(&e).0, "PERMISSION_DENIED");
    let e = query_ipc(&mut c, "r", "KEYS *", vec![]).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A pool of the config file with its own denylist.
    let e = query_ipc(&mut c, "strict", &format!("HGETALL {h}"), vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // No interactive transactions.
    let e = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "r".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("execute_batch"), "{}", e.message());
    // Connection refused: UNAVAILABLE.
    c.create_pool(pb::CreatePoolRequest {
        pool_id: "down".into(),
        url: "redis://127.0.0.1:1".into(),
        lazy: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let e = c.execute(exec("down", "PING", vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
}

#[tokio::test]
async fn redis_over_flight_doput_and_doget() {
    let p = Prefix::new();
    let server = TestServer::start(&[("r", &redis_url())]).await;
    let mut f = server.flight().await;
    let n = 1000;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8View, true),
    ]));
    let frame = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringViewArray::from_iter(
                (0..n).map(|i| (i % 7 != 0).then(|| format!("n{i}"))),
            )),
        ],
    )
    .unwrap();
    let cmd = BulkInsertCommand {
        pool_id: "r".into(),
        table: format!("{}user:{{id}}", p.0),
        mode: 0,
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: cmd.encode_to_vec(),
    };
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(any.encode_to_vec())))
        .build(futures::stream::iter(vec![Ok(frame)]));
    let results: Vec<PutResult> = f.do_put(data).await.unwrap().try_collect().await.unwrap();
    let written = BulkInsertResult::decode(results[0].app_metadata.clone()).unwrap();
    assert_eq!(written.rows_inserted, n as u64);
    // Read back with a typed pattern read, 100 rows a batch.
    let ticket = QueryTicket {
        pool_id: "r".into(),
        sql: format!("SCAN_HASHES \"{}user:*\" FIELDS id:int64 name", p.0),
        batch_size: 100,
        ..Default::default()
    }
    .encode_to_vec();
    let info = f
        .get_flight_info(FlightDescriptor::new_cmd(ticket.clone()))
        .await
        .unwrap();
    let s = info.try_decode_schema().unwrap();
    let cols: Vec<_> = s
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(
        cols,
        [
            ("key", DataType::Utf8),
            ("id", DataType::Int64),
            ("name", DataType::Utf8)
        ]
    );
    let batches: Vec<RecordBatch> = f
        .do_get(Ticket::new(ticket))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(batches.len() >= 10, "{} batches", batches.len());
    let mut seen = vec![false; n as usize];
    for b in &batches {
        let ids = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        let names = b.column(2).as_string::<i32>();
        for (i, id) in ids.values().iter().enumerate() {
            let want = (id % 7 != 0).then(|| format!("n{id}"));
            assert_eq!(names.is_valid(i).then(|| names.value(i).to_string()), want);
            seen[*id as usize] = true;
        }
    }
    assert!(seen.iter().all(|s| *s));
    // A write has no schema before it runs: GetFlightInfo says so.
    let t = QueryTicket {
        pool_id: "r".into(),
        sql: format!("INCR {}n", p.0),
        ..Default::default()
    };
    let e = f
        .get_flight_info(FlightDescriptor::new_cmd(t.encode_to_vec()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("INCR"), "{e}");
}

/// The first cell of a reply table, as text.
fn cell(batches: &[RecordBatch]) -> String {
    let col = arrow::compute::cast(batches[0].column(0), &DataType::Utf8).unwrap();
    col.as_string::<i32>().value(0).to_string()
}

/// A call that waits at most `ms` milliseconds; its error, or its reply table.
async fn query_within(
    c: &mut pb::pool_service_client::PoolServiceClient<tonic::transport::Channel>,
    sql: &str,
    ms: u64,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let mut req = tonic::Request::new(pb::QueryRequest {
        pool_id: "one".into(),
        sql: sql.into(),
        ..Default::default()
    });
    req.set_timeout(std::time::Duration::from_millis(ms));
    let mut stream = c.query(req).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(m) = stream.message().await? {
        if let Some(pb::query_response::Payload::ArrowIpc(b)) = m.payload {
            bytes.extend(b);
        }
    }
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    Ok(reader.map(|b| b.unwrap()).collect())
}

/// A call abandoned mid-command (a `BLPOP` past the caller's deadline) does not hand its
/// connection on: the pool closes it, so Redis drops that client and the next calls on
/// the pool's one connection get their own replies instead of queueing behind the
/// `BLPOP` for its 60 s. Each later call's deadline (20 s) bounds a regression's hang.
#[tokio::test]
async fn an_abandoned_blocking_command_closes_its_connection() {
    let p = Prefix::new();
    // CLIENT ID and CLIENT LIST re-allowed: the operator's, so from the config file.
    let server = TestServer::start_with(&[("one", &redis_url())], |c| {
        let p = c.pools.get_mut("one").unwrap();
        p.options.max_connections = 1;
        p.settings
            .insert("allowed_commands".into(), "CLIENT|ID,CLIENT|LIST".into());
    })
    .await;
    let mut c = server.pools().await;
    let before = cell(&query_within(&mut c, "CLIENT ID", 20_000).await.unwrap());

    let e = query_within(&mut c, &format!("BLPOP {}list 60", p.0), 1_000)
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );

    let k = format!("{}k", p.0);
    let set = c
        .execute(exec("one", "SET $1 $2", vec![p_str(&k), p_str("v1")]))
        .await
        .unwrap();
    assert_eq!(set.into_inner().rows_affected, 1);
    let got = query_within(&mut c, &format!("GET {k}"), 20_000)
        .await
        .unwrap();
    assert_eq!(cell(&got), "v1");
    for word in ["alpha", "beta"] {
        let got = query_within(&mut c, &format!("ECHO {word}"), 20_000)
            .await
            .unwrap();
        assert_eq!(cell(&got), word, "a reply meant for another call");
    }
    let after = cell(&query_within(&mut c, "CLIENT ID", 20_000).await.unwrap());
    assert_ne!(before, after, "the abandoned connection was reused");
    // Redis itself dropped the abandoned client (and with it the BLPOP).
    let gone = format!("id={before} ");
    let clients = || {
        let mut c = c.clone();
        async move { cell(&query_within(&mut c, "CLIENT LIST", 20_000).await.unwrap()) }
    };
    let dropped = try_wait_for(std::time::Duration::from_secs(10), || {
        let (list, gone) = (clients(), &gone);
        async move { (!list.await.lines().any(|l| l.starts_with(gone))).then_some(()) }
    })
    .await;
    if dropped.is_none() {
        panic!("client {before} is still connected:\n{}", clients().await);
    }
}

/// Issue 17: connection-state commands are refused, so nothing one caller selects or
/// names reaches the next. On one connection to database 3, after caller A's SELECT,
/// CLIENT SETNAME, MULTI and SUBSCRIBE (each INVALID_ARGUMENT), caller B is still on
/// database 3, unnamed, outside MULTI and without subscriptions.
#[tokio::test]
async fn connection_state_never_reaches_the_next_caller() {
    let base = redis_url();
    let url = match base.rsplit_once('/') {
        Some((head, db)) if db.parse::<u32>().is_ok() => format!("{head}/3"),
        _ => format!("{base}/3"),
    };
    let server = TestServer::start_with(&[("one", &url)], |c| {
        let p = c.pools.get_mut("one").unwrap();
        p.options.max_connections = 1;
        p.settings
            .insert("allowed_commands".into(), "CLIENT|INFO".into());
    })
    .await;
    let mut c = server.pools().await;
    let info = |c: &mut pb::pool_service_client::PoolServiceClient<_>| {
        let mut c = c.clone();
        async move { cell(&query_within(&mut c, "CLIENT INFO", 20_000).await.unwrap()) }
    };
    let fresh = info(&mut c).await;
    assert!(fresh.contains(" db=3 "), "{fresh}");
    for sql in [
        "SELECT 5",
        "CLIENT SETNAME leaked",
        "MULTI",
        "SUBSCRIBE leaked",
    ] {
        let e = c.execute(exec("one", sql, vec![])).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{sql}: {e:?}");
        assert!(e.message().contains("changes the state"), "{sql}: {e:?}");
    }
    let after = info(&mut c).await;
    for part in [" db=3 ", " name= ", " multi=-1 ", " sub=0 "] {
        assert!(after.contains(part), "`{part}` not in {after}");
    }
}
