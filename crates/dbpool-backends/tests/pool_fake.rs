//! `PoolHandle` over a fake connection manager on paused time: callers are served in
//! arrival order, a turn that never comes is the acquire timeout, and a database that
//! refuses connections opens the breaker, which lets one probe through per cool-down; a
//! connection a caller dirtied is reset or closed before anyone else gets it.
use dbpool_backends::PoolHandle;
use dbpool_config::PoolOptions;
use dbpool_core::{CircuitState, Error, UnavailableCause};
use dbpool_testkit::wait_until_sync;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The fake database: connecting fails while it is down.
#[derive(Default)]
struct Database {
    down: AtomicBool,
    connects: AtomicU32,
}

/// Connections are numbers.
struct FakeManager(Arc<Database>);

/// The one way connecting fails.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused (fake)")
    }
}

impl std::error::Error for Refused {}

impl bb8::ManageConnection for FakeManager {
    type Connection = u32;
    type Error = Refused;

    async fn connect(&self) -> Result<u32, Refused> {
        let n = self.0.connects.fetch_add(1, SeqCst) + 1;
        if self.0.down.load(SeqCst) {
            Err(Refused)
        } else {
            Ok(n)
        }
    }

    async fn is_valid(&self, _: &mut u32) -> Result<(), Refused> {
        Ok(())
    }

    fn has_broken(&self, _: &mut u32) -> bool {
        false
    }
}

fn unavailable(_: &Refused) -> Error {
    Error::unavailable(UnavailableCause::Connect, "connection refused (fake)")
}

fn pool(change: impl FnOnce(&mut PoolOptions)) -> (Arc<PoolHandle<FakeManager>>, Arc<Database>) {
    let db = Arc::new(Database::default());
    let mut options = PoolOptions {
        min_connections: 0,
        ..PoolOptions::default()
    };
    change(&mut options);
    let handle = PoolHandle::new(FakeManager(db.clone()), &options, unavailable);
    (Arc::new(handle), db)
}

/// The caller that just returned a connection and asks again at once (a client in a
/// loop) gets in line behind the callers already waiting.
#[tokio::test(start_paused = true)]
async fn callers_are_served_in_arrival_order() {
    let (pool, _) = pool(|o| o.max_connections = 1);
    let held = pool.acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 1..=3 {
        let (p, order) = (pool.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let _conn = p.acquire().await.unwrap();
            order.lock().push(i);
            // Work done on the connection (paused time: no wall-clock wait).
            tokio::time::sleep(Duration::from_millis(5)).await;
        }));
        // Each one queued before the next arrives.
        let queued = || pool.state().waiters >= i;
        wait_until_sync(Duration::from_secs(1), "the caller queued", queued).await;
    }
    drop(held);
    let again = pool.acquire().await.unwrap();
    order.lock().push(0);
    drop(again);
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(*order.lock(), vec![1, 2, 3, 0]);
    assert_eq!(pool.state().waiters, 0);
}

/// A caller whose turn never comes gets the acquire timeout, and its place in line is
/// given up (the next caller is not blocked by it).
#[tokio::test(start_paused = true)]
async fn waiting_for_a_turn_times_out() {
    let (pool, _) = pool(|o| {
        o.max_connections = 1;
        o.acquire_timeout_ms = 50;
    });
    let held = pool.acquire().await.unwrap();
    let started = Instant::now();
    let err = pool.acquire().await.err().expect("the pool is full");
    assert!(matches!(err, Error::AcquireTimeout(_)), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(50));
    assert_eq!(pool.state().acquire_timeouts, 1);
    assert_eq!(pool.state().waiters, 0);
    drop(held);
    pool.acquire().await.expect("the connection came back");
}

/// Connect failures open the circuit after the threshold: calls then fail fast without
/// trying to connect; after the cool-down one probe may, and its success closes it.
#[tokio::test(start_paused = true)]
async fn a_refusing_database_opens_the_breaker_and_a_probe_closes_it() {
    let (pool, manager) = pool(|o| {
        o.breaker_threshold = 2;
        o.breaker_cooldown_ms = 1_000;
    });
    manager.down.store(true, SeqCst);
    for _ in 0..2 {
        let e = pool.acquire().await.err().expect("the database is down");
        assert!(
            matches!(&e, Error::Unavailable { cause: UnavailableCause::Connect, message, .. } if message.contains("refused")),
            "{e:?}"
        );
    }
    assert_eq!(pool.state().circuit, CircuitState::Open);
    let tried = manager.connects.load(SeqCst);
    let e = pool.acquire().await.err().expect("the circuit is open");
    assert!(
        matches!(
            &e,
            Error::Unavailable {
                cause: UnavailableCause::CircuitOpen,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        manager.connects.load(SeqCst),
        tried,
        "an open circuit connects"
    );

    tokio::time::advance(Duration::from_millis(1_000)).await;
    assert_eq!(pool.state().circuit, CircuitState::HalfOpen);
    // The probe fails: open again for another cool-down.
    assert!(pool.acquire().await.is_err());
    assert_eq!(pool.state().circuit, CircuitState::Open);
    tokio::time::advance(Duration::from_millis(1_000)).await;
    manager.down.store(false, SeqCst);
    let conn = pool.acquire().await.expect("the probe connects");
    assert_eq!(pool.state().circuit, CircuitState::Closed);
    drop(conn);
    pool.acquire().await.unwrap();
}

/// The id of the connection one checkout gets (given back at once).
async fn checkout(pool: &PoolHandle<FakeManager>) -> u32 {
    **pool.acquire().await.unwrap()
}

/// Issue 17: a connection whose session a caller dirtied is not handed on as it is —
/// closed by default (the next caller gets a new one), kept when the pool's reset
/// succeeds — and with `reset_sessions = "always"` every use counts as dirty.
#[tokio::test]
async fn dirty_connections_are_reset_or_closed_before_reuse() {
    use dbpool_backends::Dirty;
    let (p, _) = pool(|o| o.max_connections = 1);
    let first = checkout(&p).await;
    assert_eq!(checkout(&p).await, first, "a clean connection is reused");
    let mut c = p.acquire().await.unwrap();
    c.mark_dirty();
    drop(c);
    assert_ne!(
        checkout(&p).await,
        first,
        "a dirty connection was handed on"
    );

    let options = PoolOptions {
        max_connections: 1,
        min_connections: 0,
        ..PoolOptions::default()
    };
    let db = Arc::new(Database::default());
    let kept = PoolHandle::new(FakeManager(db), &options, unavailable).with_reset(|mut c| c.keep());
    let first = checkout(&kept).await;
    let mut c = kept.acquire().await.unwrap();
    c.mark_dirty();
    drop(c);
    assert_eq!(checkout(&kept).await, first, "a reset connection goes back");

    let (always, _) = pool(|o| {
        o.max_connections = 1;
        o.reset_sessions = dbpool_config::ResetSessions::Always;
    });
    let first = checkout(&always).await;
    assert_ne!(checkout(&always).await, first, "`always` reset (closed) it");
}
