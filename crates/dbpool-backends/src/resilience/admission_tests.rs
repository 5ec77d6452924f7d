//! Admission without a database: checkouts are scripted futures, time is paused.
use super::*;
use std::future::pending;

fn options(max_connections: u32, max_waiters: u32, breaker_threshold: u32) -> PoolOptions {
    PoolOptions {
        max_connections,
        max_waiters,
        breaker_threshold,
        breaker_cooldown_ms: 1_000,
        acquire_timeout_ms: 100,
        ..PoolOptions::default()
    }
}

fn refused() -> Error {
    Error::unavailable(UnavailableCause::Connect, "refused")
}

#[tokio::test(start_paused = true)]
async fn connect_failures_open_the_breaker_which_then_fails_fast() {
    let a = Admission::new(&options(1, 10, 2));
    for _ in 0..2 {
        let e = a.admit(async { Err::<(), _>(refused()) }).await.err();
        assert_eq!(
            e.and_then(|e| e.unavailable_cause()),
            Some(UnavailableCause::Connect)
        );
    }
    assert_eq!(a.circuit(), CircuitState::Open);
    let e = a.admit(async { Ok(()) }).await.err();
    assert_eq!(
        e.and_then(|e| e.unavailable_cause()),
        Some(UnavailableCause::CircuitOpen)
    );
    tokio::time::advance(Duration::from_millis(1_000)).await;
    assert!(a.admit(async { Ok(()) }).await.is_ok(), "the probe");
    assert_eq!(a.circuit(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_checkout_that_never_ends_times_out_and_is_counted() {
    let a = Admission::new(&options(1, 10, 1));
    let e = a.admit(pending::<Result<()>>()).await.err();
    assert!(matches!(e, Some(Error::AcquireTimeout(_))), "{e:?}");
    assert_eq!(a.timeouts(), 1);
    assert_eq!(a.waiters(), 0);
    // A timeout says nothing about the database: the breaker stays closed.
    assert_eq!(a.circuit(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_published_connect_failure_ends_the_wait_at_once() {
    let a = Arc::new(Admission::new(&options(1, 10, 0)));
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.admit(pending::<Result<()>>()).await.err() }
    });
    while a.waiters() == 0 {
        tokio::task::yield_now().await;
    }
    a.watch().publish(refused());
    let e = waiting.await.unwrap();
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("database unavailable: refused")
    );
    assert_eq!(a.timeouts(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_queue_is_bounded() {
    let a = Arc::new(Admission::new(&options(1, 1, 0)));
    let (_turn, ()) = a.admit(async { Ok(()) }).await.unwrap();
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.admit(async { Ok(()) }).await.err() }
    });
    while a.waiters() == 0 {
        tokio::task::yield_now().await;
    }
    let e = a.admit(async { Ok(()) }).await.err();
    assert!(matches!(e, Some(Error::ResourceExhausted(_))), "{e:?}");
    // The one in line gets its turn only when the holder lets go; here it times out.
    let e = waiting.await.unwrap();
    assert!(matches!(e, Some(Error::AcquireTimeout(_))), "{e:?}");
}
