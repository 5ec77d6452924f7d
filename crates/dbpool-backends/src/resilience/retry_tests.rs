//! Retry against a scripted backend, on paused time.
use super::*;
use crate::resilience::scripted::{down, Scripted};
use tokio::time::Instant;
use UnavailableCause::*;

fn retrying(inner: &Arc<Scripted>) -> Retrying {
    Retrying::new(inner.clone(), Backoff::default())
}

#[tokio::test(start_paused = true)]
async fn a_read_whose_connection_failed_is_retried_twice_with_backoff() {
    let inner = Scripted::failing([down(Connect), down(Closed)]);
    let started = Instant::now();
    retrying(&inner)
        .query("SELECT 1", vec![], 10)
        .await
        .unwrap();
    assert_eq!(inner.calls(), 3);
    // 50 ms then 200 ms, each plus up to as much again of jitter.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited <= Duration::from_millis(500),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn after_two_retries_the_last_error_is_returned() {
    let inner = Scripted::failing([down(Busy), down(Busy), down(Closed), down(Busy)]);
    let e = retrying(&inner).query("SELECT 1", vec![], 10).await.err();
    assert_eq!(inner.calls(), 3);
    assert_eq!(e.and_then(|e| e.unavailable_cause()), Some(Closed));
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_fails_at_once() {
    let inner = Scripted::failing([down(CircuitOpen)]);
    let started = Instant::now();
    let e = retrying(&inner).query("SELECT 1", vec![], 10).await.err();
    assert_eq!(e.and_then(|e| e.unavailable_cause()), Some(CircuitOpen));
    assert_eq!(inner.calls(), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn writes_and_statement_errors_are_not_retried() {
    let inner = Scripted::failing([down(Connect)]);
    assert!(retrying(&inner)
        .execute("DELETE FROM t", vec![])
        .await
        .is_err());
    assert_eq!(inner.calls(), 1);
    let inner = Scripted::failing([Error::Database {
        message: "syntax error".into(),
        code: Some("42601".into()),
    }]);
    assert!(retrying(&inner).query("SELEC 1", vec![], 10).await.is_err());
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn everything_else_passes_through() {
    let inner = Scripted::failing([]);
    let b = retrying(&inner);
    *inner.circuit.lock() = dbpool_core::CircuitState::Open;
    assert_eq!(b.state().circuit, dbpool_core::CircuitState::Open);
    assert_eq!(b.kind(), BackendKind::Postgres);
    b.health_check().await.unwrap();
    assert_eq!(b.execute_batch(vec![], true).await.unwrap().len(), 0);
    assert!(b.failover().is_none());
    assert_eq!(inner.calls(), 2);
}
