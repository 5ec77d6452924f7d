//! Metrics (Prometheus endpoint and GetMetrics from the same counters) and readiness
//! that follows the database, against real PostgreSQL servers.
mod common;

use common::*;
use dbpool_proto::v1 as pb;
use dbpool_testkit::{PgDb, TempPostgres};
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::health_check_response::ServingStatus;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Scrapes /metrics and parses each sample line into `name{labels}` → value.
async fn scrape(port: u16) -> HashMap<String, f64> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let (head, text) = body.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (
                k.to_string(),
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad value in {l}")),
            )
        })
        .collect()
}

#[tokio::test]
async fn metrics_move_as_queries_run() {
    let db = PgDb::create().await;
    let port = free_port();
    let server = TestServer::start_with(&[("pg", &db.url)], |c| {
        c.server.metrics_listen = Some(format!("127.0.0.1:{port}"))
    })
    .await;
    let mut c = server.pools().await;
    let before = scrape(port).await;
    assert_eq!(before[r#"dbpool_calls_total{pool="pg",kind="query"}"#], 0.0);
    for _ in 0..3 {
        let b = query_ipc(
            &mut c,
            "pg",
            "SELECT g FROM generate_series(1, 10) g",
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
    }
    let e = query_ipc(&mut c, "pg", "SELECT * FROM nope", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let after = scrape(port).await;
    assert_eq!(after[r#"dbpool_calls_total{pool="pg",kind="query"}"#], 4.0);
    assert_eq!(after[r#"dbpool_rows_streamed_total{pool="pg"}"#], 30.0);
    assert!(after[r#"dbpool_streamed_bytes_total{pool="pg"}"#] > 0.0);
    assert_eq!(
        after[r#"dbpool_errors_total{pool="pg",code="INVALID_ARGUMENT"}"#],
        1.0
    );
    assert_eq!(
        after[r#"dbpool_call_duration_seconds_count{pool="pg",kind="query"}"#],
        4.0
    );
    assert_eq!(
        after[r#"dbpool_call_duration_seconds_bucket{le="+Inf",pool="pg",kind="query"}"#],
        4.0
    );
    assert!(after[r#"dbpool_acquire_wait_seconds_count{pool="pg"}"#] >= 4.0);
    assert_eq!(after[r#"dbpool_pool_connections_max{pool="pg"}"#], 10.0);
    assert_eq!(after[r#"dbpool_pool_healthy{pool="pg"}"#], 1.0);
    // GetMetrics reads the same counters.
    let m = c
        .get_metrics(pb::GetMetricsRequest {
            pool_id: "pg".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let pm = &m.metrics[0];
    assert_eq!(pm.calls_total["query"], 4);
    assert_eq!(pm.rows_streamed_total, 30);
    assert_eq!(pm.errors_total["INVALID_ARGUMENT"], 1);
    assert_eq!(pm.call_duration_seconds["query"].count, 4);
    assert_eq!(m.pools[0].queries_total, 4);
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .unwrap();
    let other = PgDb::create().await;
    let server = TestServer::start_with(&[("flaky", &pg.url()), ("steady", &other.url)], |c| {
        c.server.readiness = dbpool_config::Readiness::Required;
        c.server.required_pools = vec!["flaky".into()];
    })
    .await;
    wait_health(&server, "", ServingStatus::Serving).await;
    wait_health(&server, "dbpool.pool.flaky", ServingStatus::Serving).await;
    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    wait_health(&server, "dbpool.pool.flaky", ServingStatus::NotServing).await;
    wait_health(&server, "", ServingStatus::NotServing).await;
    // The other pool is unaffected and keeps serving queries.
    assert_eq!(
        health(&server, "dbpool.pool.steady").await.ok(),
        Some(ServingStatus::Serving as i32)
    );
    let mut c = server.pools().await;
    assert!(query_ipc(&mut c, "steady", "SELECT 1", vec![])
        .await
        .is_ok());
    let e = query_ipc(&mut c, "flaky", "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    let _pg = tokio::task::spawn_blocking(move || {
        pg.restart();
        pg
    })
    .await
    .unwrap();
    wait_health(&server, "dbpool.pool.flaky", ServingStatus::Serving).await;
    wait_health(&server, "", ServingStatus::Serving).await;
    assert!(query_ipc(&mut c, "flaky", "SELECT 1", vec![]).await.is_ok());
}
