//! The server over fake backends on paused time, for what depends on the clock: reads
//! retried with backoff by the resilience layer (writes and open circuits not), and
//! idle transactions rolled back by the reaper.
mod common;
mod fake_server;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::{query_ipc, wait_until_sync, WAIT};
use dbpool_core::{Error, UnavailableCause};
use dbpool_proto::v1 as pb;
use dbpool_testkit::{FakeFactory, Step, Verb};
use fake_server::{config, execute, FakeServer, Resilient};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Code;

/// A server whose pool `p` is a fake inside the resilience layer.
async fn resilient() -> FakeServer {
    let fakes = FakeFactory::new();
    let factory = Arc::new(Resilient(fakes.clone()));
    FakeServer::start_over(config(&["p"]), factory, fakes, |b| b).await
}

#[tokio::test(start_paused = true)]
async fn a_read_whose_connection_failed_is_retried_with_backoff() {
    let server = resilient().await;
    let fake = server.fake("p");
    fake.then(Verb::Query, Step::down())
        .then(Verb::Query, Step::down());
    let c = server.pools().await;
    let query = tokio::spawn(async move {
        let mut c = c;
        query_ipc(&mut c, "p", "SELECT n", vec![]).await
    });
    fake.reached(Verb::Query, 1).await;
    let first = Instant::now();
    fake.reached(Verb::Query, 3).await;
    // 50 ms then 200 ms, each plus up to as much again of jitter.
    let waited = first.elapsed();
    let bounds = Duration::from_millis(250)..Duration::from_millis(500);
    assert!(bounds.contains(&waited), "{waited:?}");
    let batches = query.await.unwrap().expect("the third try succeeds");
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 0);
    assert_eq!(fake.calls(Verb::Query), 3);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn writes_open_circuits_and_statement_errors_are_not_retried() {
    let server = resilient().await;
    let fake = server.fake("p");
    let mut c = server.pools().await;

    fake.then(Verb::Execute, Step::down());
    let e = execute(&mut c, "p", "", "UPDATE t").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(
        fake.calls(Verb::Execute),
        1,
        "a write may have run: never again"
    );

    fake.then(Verb::Batch, Step::down());
    let e = c
        .execute_batch(pb::ExecuteBatchRequest {
            pool_id: "p".into(),
            statements: vec![pb::Statement {
                sql: "INSERT 1".into(),
                params: vec![],
            }],
            transaction: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(fake.calls(Verb::Batch), 1);

    let circuit = || Error::unavailable(UnavailableCause::CircuitOpen, "circuit open (fake)");
    fake.then(Verb::Query, Step::fail(circuit));
    let e = query_ipc(&mut c, "p", "SELECT n", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(fake.calls(Verb::Query), 1, "an open circuit fails fast");

    let syntax = || Error::Database {
        message: "syntax error".into(),
        code: Some("42601".into()),
    };
    fake.then(Verb::Query, Step::fail(syntax));
    let e = query_ipc(&mut c, "p", "SELEC n", vec![]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(fake.calls(Verb::Query), 2);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_transaction_is_rolled_back_on_the_servers_clock() {
    let server = FakeServer::start(config(&["p"]), |b| b).await;
    let fake = server.fake("p");
    let mut c = server.pools().await;
    let tx = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "p".into(),
            idle_timeout_ms: 1_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    // Used every 800 ms (the paused clock moves on while the test waits), it stays open.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(execute(&mut c, "", &tx, "UPDATE t").await.unwrap(), 1);
    }
    assert_eq!(fake.calls(Verb::Rollback), 0);

    // Left alone, it is rolled back at the first round of the reaper (every 250 ms)
    // after the idle timeout.
    let last_used = Instant::now();
    fake.reached(Verb::Rollback, 1).await;
    let idle = last_used.elapsed();
    let bounds = Duration::from_millis(1_000)..=Duration::from_millis(1_250);
    assert!(bounds.contains(&idle), "{idle:?}");
    let e = execute(&mut c, "", &tx, "UPDATE t").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c
        .commit(pb::EndTransactionRequest {
            transaction_id: tx.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(
        (fake.calls(Verb::Commit), fake.calls(Verb::Rollback)),
        (0, 1)
    );
    wait_until_sync(WAIT, "the connection given back", || fake.in_flight() == 0).await;
    server.stop().await;
}
