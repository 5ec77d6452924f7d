//! Flight SQL prepared statements cannot be hoarded: a cap per client connection (another
//! connection can still prepare), idle expiry, freed when the connection closes, and a
//! handle works only on the connection that created it.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use common::flight_sql::*;
use common::*;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use futures::TryStreamExt;
use std::time::Duration;
use tonic::Code;

/// Prepared statements open on the server.
fn open(server: &TestServer) -> usize {
    server.flight_state.open_prepared_statements()
}

/// Waits until the server's open-statement count is `want` (10 s at most): woken by each
/// change of the count.
async fn wait_for_open(server: &TestServer, want: usize) {
    let mut count = server.flight_state.watch_prepared_statements();
    let reached = tokio::time::timeout(Duration::from_secs(10), count.wait_for(|n| *n == want));
    let n = *reached.await.expect("the count never reached it").unwrap();
    assert_eq!(n, want);
}

#[tokio::test]
async fn cap_is_per_connection_and_handles_belong_to_their_connection() {
    let server = TestServer::start_with(&[], |c| {
        c.server.limits.max_prepared_statements_per_connection = 3
    })
    .await;
    let (mut a, mut b) = (server.flight().await, server.flight().await);
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(prepare(&mut a, "SELECT 1 AS one").await.unwrap());
    }
    let s = prepare(&mut a, "SELECT 1 AS one").await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(
        s.message()
            .contains("max_prepared_statements_per_connection"),
        "{s:?}"
    );
    // Another client is not refused because of a's statements.
    let theirs = prepare(&mut b, "SELECT 2 AS two").await.unwrap();
    assert_eq!(open(&server), 4);
    // Handles are random and distinct, and usable only on their own connection.
    assert_eq!(mine[0].len(), 35, "ps- and 32 hex digits: {:?}", mine[0]);
    assert!(mine.iter().all(|h| h != &theirs));
    let s = info(&mut b, &mine[0]).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    assert!(s.message().contains("no such prepared statement"), "{s:?}");
    assert_eq!(
        close(&mut b, &mine[0]).await.unwrap_err().code(),
        Code::NotFound
    );
    // On its own connection it runs: the FlightInfo's ticket streams its result.
    let i = info(&mut a, &mine[0]).await.unwrap();
    let ticket = i.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<RecordBatch> = a.do_get(ticket).await.unwrap().try_collect().await.unwrap();
    assert_eq!(batches[0].schema().field(0).name(), "one");
    // Closing one makes room again.
    close(&mut a, &mine[0]).await.unwrap();
    prepare(&mut a, "SELECT 3 AS three").await.unwrap();
    assert_eq!(
        info(&mut a, &mine[0]).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(open(&server), 4);
}

/// Driven by the reaper directly (the registry's own test covers use keeping one alive).
#[tokio::test]
async fn idle_statements_expire() {
    let server = TestServer::start_with(&[], |c| {
        c.server.limits.prepared_statement_idle_timeout_ms = 60_000
    })
    .await;
    let mut f = server.flight().await;
    let h = prepare(&mut f, "SELECT 1 AS one").await.unwrap();
    assert_eq!(open(&server), 1);
    let now = tokio::time::Instant::now();
    let state = &server.flight_state;
    assert_eq!(state.reap_idle_at(now + Duration::from_secs(59)), 0);
    assert_eq!(state.reap_idle_at(now + Duration::from_secs(60)), 1);
    assert_eq!(open(&server), 0);
    let s = info(&mut f, &h).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    assert!(
        s.message().contains("unused for more than 60000 ms"),
        "{s:?}"
    );
    // The connection itself is fine.
    prepare(&mut f, "SELECT 1 AS one").await.unwrap();
}

#[tokio::test]
async fn closing_the_connection_frees_its_statements() {
    let server = TestServer::start(&[]).await;
    let mut a = server.flight().await;
    let mut b = server.flight().await;
    for _ in 0..5 {
        prepare(&mut a, "SELECT 1 AS one").await.unwrap();
    }
    let kept = prepare(&mut b, "SELECT 2 AS two").await.unwrap();
    assert_eq!(open(&server), 6);
    drop(a);
    wait_for_open(&server, 1).await;
    info(&mut b, &kept).await.unwrap();
}

#[tokio::test]
async fn bound_parameters_are_validated_and_bounded() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_batch_statements = 3).await;
    let mut pools = server.pools().await;
    let count = |mut pools: PoolServiceClient<tonic::transport::Channel>| async move {
        let b = query_ipc(&mut pools, "default", "SELECT count(*) FROM p", vec![])
            .await
            .unwrap();
        b[0].column(0).as_primitive::<Int64Type>().value(0)
    };
    pools
        .execute(dbpool_proto::v1::ExecuteRequest {
            pool_id: "default".into(),
            sql: "CREATE TABLE p (v INTEGER)".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut f = server.flight().await;
    let h = prepare(&mut f, "INSERT INTO p (v) VALUES (?)")
        .await
        .unwrap();
    // More rows than max_batch_statements: refused whole.
    let s = put_params(&mut f, &h, param_rows(0..4)).await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains("max_batch_statements"), "{s:?}");
    // A truncated parameter batch: INVALID_ARGUMENT naming the message.
    let mut msgs = param_rows(0..3);
    let body = msgs[1].data_body.clone();
    msgs[1].data_body = body.slice(..body.len() / 2);
    let s = put_params(&mut f, &h, msgs).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("flight_data[1]"), "{s:?}");
    assert_eq!(count(pools.clone()).await, 0, "nothing inserted");
    // Within the bound, every row runs.
    assert_eq!(put_params(&mut f, &h, param_rows(0..3)).await.unwrap(), 3);
    assert_eq!(count(pools).await, 3);
}

#[tokio::test]
async fn prepared_sql_is_bounded() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_sql_bytes = 64).await;
    let mut f = server.flight().await;
    let long = format!("SELECT '{}' AS x", "y".repeat(64));
    let s = prepare(&mut f, &long).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("max_sql_bytes"), "{s:?}");
    assert_eq!(open(&server), 0);
    prepare(&mut f, "SELECT 1 AS one").await.unwrap();
}
