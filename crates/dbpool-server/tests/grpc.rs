//! PoolService over real gRPC against real PostgreSQL and SQLite.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::{Int32Type, Int64Type};
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_testkit::PgDb;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn embedded_default_pool_round_trip() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let pools = c
        .list_pools(pb::ListPoolsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pools;
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].pool_id, "default");
    assert_eq!(pools[0].backend, "sqlite");
    c.execute(pb::ExecuteRequest {
        pool_id: "default".into(),
        sql: "CREATE TABLE t (id INTEGER, s TEXT)".into(),
        params: vec![],
        ..Default::default()
    })
    .await
    .unwrap();
    let n = c
        .execute(pb::ExecuteRequest {
            pool_id: "default".into(),
            sql: "INSERT INTO t VALUES (?, ?), (?, ?)".into(),
            params: vec![p_int(1), p_str("a"), p_int(2), p_str("b")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.rows_affected, 2);
    let batches = query_ipc(&mut c, "default", "SELECT id, s FROM t ORDER BY id", vec![])
        .await
        .unwrap();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, vec![1, 2]);
}

#[tokio::test]
async fn json_rows_for_grpcurl_users() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    let mut s = c
        .query(pb::QueryRequest {
            pool_id: "pg".into(),
            sql: "SELECT 1::int AS a, 'x' AS b, NULL::text AS c, 1.50::numeric(4,2) AS d".into(),
            format: pb::ResultFormat::JsonRows as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let head = s.message().await.unwrap().unwrap();
    let Some(pb::query_response::Payload::Rows(head)) = head.payload else {
        panic!("rows expected")
    };
    assert_eq!(head.columns, vec!["a", "b", "c", "d"]);
    let body = s.message().await.unwrap().unwrap();
    let Some(pb::query_response::Payload::Rows(body)) = body.payload else {
        panic!("rows expected")
    };
    use prost_types::value::Kind;
    let row = &body.rows[0].fields;
    assert_eq!(row["a"].kind, Some(Kind::NumberValue(1.0)));
    assert_eq!(row["b"].kind, Some(Kind::StringValue("x".into())));
    assert_eq!(row["c"].kind, Some(Kind::NullValue(0)));
    assert_eq!(row["d"].kind, Some(Kind::StringValue("1.50".into())));
    assert!(s.message().await.unwrap().is_none());
}

#[tokio::test]
async fn create_and_remove_pools_at_runtime() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let created = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "pg".into(),
            db_type: "postgresql".into(),
            host: "127.0.0.1".into(),
            port: 5432,
            database: db.name.clone(),
            username: "postgres".into(),
            password: "not-shown".into(),
            options: Some(pb::PoolOptions {
                max_connections: 3,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .pool
        .unwrap();
    assert_eq!(created.backend, "postgresql");
    assert!(created.redacted_url.contains("***") && !created.redacted_url.contains("not-shown"));
    assert_eq!(created.options.unwrap().max_connections, 3);
    let b = query_ipc(&mut c, "pg", "SELECT $1::int + 1 AS v", vec![p_int(41)])
        .await
        .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int32Type>().value(0), 42);
    let status = c
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: "pg".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.max_connections, 3);
    assert!(status.size >= 1 && status.queries_total == 1);
    let m = c
        .get_metrics(pb::GetMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.pools.len(), 2);
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "pg".into(),
            url: db.url.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    c.remove_pool(pb::RemovePoolRequest {
        pool_id: "pg".into(),
    })
    .await
    .unwrap();
    let e = query_ipc(&mut c, "pg", "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("`pg`"));
    let e = c
        .remove_pool(pb::RemovePoolRequest {
            pool_id: "pg".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn error_codes() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    // SQL error: INVALID_ARGUMENT with the SQLSTATE in message and details.
    let e = query_ipc(&mut c, "pg", "SELECT * FROM missing_table", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("missing_table") && e.message().contains("42P01"),
        "{}",
        e.message()
    );
    assert_eq!(
        e.get_details_error_info().unwrap().metadata["sqlstate"],
        "42P01"
    );
    // Bad request field: named.
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "pg".into(),
            sql: " ".into(),
            params: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`sql`"), "{}", e.message());
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "pg".into(),
            sql: "SELECT $1::numeric".into(),
            params: vec![pb::Param {
                value: Some(pb::param::Value::Decimal("1e5".into())),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("params[0]"), "{}", e.message());
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "x".into(),
            url: "mysql://h/db".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("mysql"));
    // Unreachable database: UNAVAILABLE, quickly, and the daemon stays up.
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "down".into(),
            url: "postgres://postgres@127.0.0.1:1/x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    c.create_pool(pb::CreatePoolRequest {
        pool_id: "down".into(),
        url: "postgres://postgres@127.0.0.1:1/x".into(),
        lazy: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "down".into(),
            sql: "SELECT 1".into(),
            params: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    // Acquire timeout: RESOURCE_EXHAUSTED.
    c.create_pool(pb::CreatePoolRequest {
        pool_id: "one".into(),
        url: db.url.clone(),
        options: Some(pb::PoolOptions {
            max_connections: 1,
            acquire_timeout_ms: 300,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut c2 = c.clone();
    // pg_sleep: a statement that holds the pool's connection, not a wait of the test.
    let slow =
        tokio::spawn(
            async move { query_ipc(&mut c2, "one", "SELECT pg_sleep(1.5)", vec![]).await },
        );
    wait_running(&db, "SELECT pg_sleep(1.5)").await;
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "one".into(),
            sql: "SELECT 1".into(),
            params: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(slow.await.unwrap().is_ok());
    let status = c
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: "one".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.acquire_timeouts_total, 1);
    // Still serving.
    let b = query_ipc(&mut c, "pg", "SELECT 1::int8 AS one", vec![])
        .await
        .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 1);
}

#[tokio::test]
async fn transactional_batch_reports_failing_index() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE k (id int PRIMARY KEY)").await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    let st = |sql: &str| pb::Statement {
        sql: sql.into(),
        params: vec![],
    };
    let e = c
        .execute_batch(pb::ExecuteBatchRequest {
            pool_id: "pg".into(),
            statements: vec![
                st("INSERT INTO k VALUES (1)"),
                st("INSERT INTO k VALUES (1)"),
            ],
            transaction: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("statement 1") && e.message().contains("23505"),
        "{}",
        e.message()
    );
    let info = e.get_details_error_info().unwrap();
    assert_eq!(info.metadata["statement_index"], "1");
    let count: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM k", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    let ok = c
        .execute_batch(pb::ExecuteBatchRequest {
            pool_id: "pg".into(),
            statements: vec![
                st("INSERT INTO k VALUES (1)"),
                st("INSERT INTO k VALUES (1)"),
            ],
            transaction: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ok.results[0].ok && !ok.results[1].ok);
    assert_eq!(ok.results[1].code, "23505");
    assert_eq!(ok.total_rows_affected, 1);
}

/// The sizes of the `arrow_ipc` chunks of one Query, and the rows they decode to.
async fn ipc_chunks(
    c: &mut dbpool_proto::v1::pool_service_client::PoolServiceClient<tonic::transport::Channel>,
    pool: &str,
    sql: &str,
    batch_size: u32,
) -> (Vec<usize>, Vec<i64>) {
    let mut stream = c
        .query(pb::QueryRequest {
            pool_id: pool.into(),
            sql: sql.into(),
            batch_size,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (mut sizes, mut bytes) = (vec![], vec![]);
    while let Some(msg) = stream.message().await.unwrap() {
        let Some(pb::query_response::Payload::ArrowIpc(b)) = msg.payload else {
            panic!("not Arrow IPC");
        };
        sizes.push(b.len());
        bytes.extend(b);
    }
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let ids = reader
        .flat_map(|b| {
            b.unwrap()
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    (sizes, ids)
}

#[tokio::test]
async fn small_results_are_one_message_large_ones_stream() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    // Schema, the batch and the end marker travel together.
    let (sizes, ids) = ipc_chunks(&mut c, "pg", "SELECT 42::int8 AS v", 0).await;
    assert_eq!(ids, vec![42]);
    assert_eq!(sizes.len(), 1, "chunks: {sizes:?}");

    // 400,000 int8 rows (3.2 MB) in batches of 10,000: many messages, none much over
    // the 1 MiB coalescing limit, every row in order.
    let sql = "SELECT g::int8 FROM generate_series(1, 400000) g";
    let (sizes, ids) = ipc_chunks(&mut c, "pg", sql, 10_000).await;
    assert_eq!(ids, (1..=400_000).collect::<Vec<i64>>());
    assert!(sizes.len() >= 4, "chunks: {sizes:?}");
    assert!(
        sizes.iter().all(|s| *s < (1 << 20) + 100_000),
        "chunks: {sizes:?}"
    );
}
