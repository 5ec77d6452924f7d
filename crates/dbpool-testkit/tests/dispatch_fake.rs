//! Call dispatch through `PoolManager` and `TxRegistry` over the fake factory, on paused
//! time: each pool's calls reach its own backend, a removed pool lets its in-flight call
//! finish, a call abandoned at its deadline or a dropped stream gives its connection
//! back, and transactions end on the backend that began them.
use dbpool_config::{PoolConfig, Secret};
use dbpool_core::{CircuitState, Error, PoolManager, TxOptions, TxRegistry};
use dbpool_testkit::{FakeFactory, Gate, Step, Verb};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn cfg() -> PoolConfig {
    PoolConfig {
        url: Some(Secret::new("postgres://fake/db")),
        ..Default::default()
    }
}

fn manager() -> (Arc<PoolManager>, FakeFactory) {
    let factory = FakeFactory::new();
    (
        Arc::new(PoolManager::new(Arc::new(factory.clone()))),
        factory,
    )
}

#[tokio::test(start_paused = true)]
async fn each_pool_dispatches_to_its_own_backend() {
    let (m, fakes) = manager();
    m.create("a", &cfg(), true).await.unwrap();
    m.create("b", &cfg(), false).await.unwrap();
    let (a, b) = (fakes.get("a"), fakes.get("b"));
    assert_eq!((a.calls(Verb::Health), b.calls(Verb::Health)), (1, 0));
    a.set_default(Step::ok(3));
    b.set_default(Step::ok(2500));

    let entry = m.get("a").unwrap();
    assert_eq!(entry.backend.execute("UPDATE", vec![]).await.unwrap(), 3);
    let q = m
        .get("b")
        .unwrap()
        .backend
        .query("SELECT", vec![], 1000)
        .await;
    let sizes: Vec<usize> = q
        .unwrap()
        .batches
        .map(|b| b.unwrap().num_rows())
        .collect()
        .await;
    assert_eq!(sizes, [1000, 1000, 500]);
    assert_eq!((a.calls(Verb::Execute), b.calls(Verb::Execute)), (1, 0));
    assert_eq!((a.calls(Verb::Query), b.calls(Verb::Query)), (0, 1));

    // The status a pool reports is its backend's.
    a.set_state(|s| s.circuit = CircuitState::Open);
    assert_eq!(entry.snapshot().state.circuit, CircuitState::Open);
    assert_eq!(
        m.get("b").unwrap().snapshot().state.circuit,
        CircuitState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_check_adds_nothing_and_a_retry_can_succeed() {
    let (m, fakes) = manager();
    let down = dbpool_testkit::Fake::new(dbpool_config::BackendKind::Postgres);
    down.set_default(Step::down());
    fakes.insert("p", down.clone());
    let e = m.create("p", &cfg(), true).await.err().unwrap();
    assert!(e.is_connection_error(), "{e:?}");
    assert!(m.list().is_empty());
    down.set_default(Step::ok(1));
    m.create("p", &cfg(), true).await.unwrap();
    assert_eq!(down.calls(Verb::Health), 2);
}

#[tokio::test(start_paused = true)]
async fn a_removed_pool_lets_its_in_flight_call_finish() {
    let (m, fakes) = manager();
    m.create("a", &cfg(), false).await.unwrap();
    let fake = fakes.get("a");
    let gate = Gate::new();
    fake.then(Verb::Execute, Step::ok(4).until(&gate));
    let entry = m.get("a").unwrap();
    let call = tokio::spawn(async move { entry.backend.execute("UPDATE", vec![]).await });
    fake.reached(Verb::Execute, 1).await;
    m.remove("a").unwrap();
    assert!(matches!(m.get("a"), Err(Error::PoolNotFound(_))));
    assert_eq!(fake.in_flight(), 1);
    gate.release();
    assert_eq!(call.await.unwrap().unwrap(), 4);
    assert_eq!(fake.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_call_and_a_dropped_stream_give_the_connection_back() {
    let (m, fakes) = manager();
    let b = m.create("a", &cfg(), false).await.unwrap().backend.clone();
    let fake = fakes.get("a");
    // A slow statement cut off at the caller's deadline (as a gRPC deadline does).
    fake.then(Verb::Execute, Step::ok(1).after(Duration::from_secs(60)));
    let started = Instant::now();
    let cut = tokio::time::timeout(Duration::from_secs(2), b.execute("SLOW", vec![])).await;
    assert!(cut.is_err());
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(fake.in_flight(), 0);
    // A stream holds its connection until it is dropped mid-result.
    fake.set_default(Step::ok(10));
    let mut q = b.query("SELECT", vec![], 2).await.unwrap();
    assert_eq!(q.batches.next().await.unwrap().unwrap().num_rows(), 2);
    assert_eq!(fake.in_flight(), 1);
    drop(q);
    assert_eq!(fake.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn transactions_end_on_the_backend_that_began_them() {
    let (m, fakes) = manager();
    let entry = m.create("a", &cfg(), false).await.unwrap();
    let fake = fakes.get("a");
    let txs = TxRegistry::new(1);
    let idle = Duration::from_secs(60);

    let tx = entry.backend.begin(TxOptions::default()).await.unwrap();
    let id = txs.register(entry.clone(), tx, Some(1), idle).ok().unwrap();
    assert_eq!(fake.in_flight(), 1, "a transaction holds its connection");
    // Only its owner sees it; the owner may hold one at a time.
    assert!(matches!(
        txs.get(&id, Some(2)),
        Err(Error::TransactionNotFound(_))
    ));
    assert!(matches!(
        txs.check_room(Some(1)),
        Err(Error::ResourceExhausted(_))
    ));
    let held = txs.get(&id, Some(1)).unwrap();
    assert_eq!(held.tx.execute("INSERT", vec![]).await.unwrap(), 1);
    drop(held);
    txs.end(&id, true, Some(1)).await.unwrap();
    assert_eq!((fake.calls(Verb::Commit), fake.in_flight()), (1, 0));
    assert!(txs.is_empty());

    // A client that goes away has its transactions rolled back.
    let tx = entry.backend.begin(TxOptions::default()).await.unwrap();
    txs.register(entry.clone(), tx, Some(1), idle).ok().unwrap();
    assert_eq!(txs.owner_gone(1).await, 1);
    assert_eq!((fake.calls(Verb::Rollback), fake.in_flight()), (1, 0));

    // A begin that fails registers nothing and holds nothing.
    fake.then(Verb::Begin, Step::down());
    let e = entry
        .backend
        .begin(TxOptions::default())
        .await
        .err()
        .unwrap();
    assert!(e.is_connection_error());
    assert_eq!(fake.in_flight(), 0);
}
