//! Failover over scripted fake servers on paused time: reads move to the first backup
//! that answers while the primary is down, writes are refused as read-only, and the
//! probe (every cool-down) brings the primary back. The live PostgreSQL version of this
//! (driver behaviour: read-only backups, SQLSTATE 25006) is dbpool-server's
//! tests/failover.rs.
use dbpool_backends::postgres::backup::READ_ONLY;
use dbpool_backends::resilience::FailoverBackend;
use dbpool_config::BackendKind;
use dbpool_core::{Backend, CircuitState, Error, Executor, Failover, Serving, TxOptions};
use dbpool_testkit::{wait_until_sync, Fake, Step, Verb};
use futures::TryStreamExt;
use std::time::Duration;
use tokio::time::{timeout, Instant};

const COOLDOWN: Duration = Duration::from_millis(300);

/// A primary and `n` backups, all up, behind one failover backend.
fn pool(n: usize) -> (FailoverBackend, Fake, Vec<Fake>) {
    let primary = Fake::new(BackendKind::Postgres);
    let backups: Vec<Fake> = (0..n).map(|_| Fake::new(BackendKind::Postgres)).collect();
    let backend = FailoverBackend::new(
        "fo",
        primary.backend(),
        backups.iter().map(Fake::backend).collect(),
        COOLDOWN,
        &READ_ONLY,
    );
    (backend, primary, backups)
}

/// Rows a query answered with.
async fn read(b: &FailoverBackend) -> Result<usize, Error> {
    let q = b.query("SELECT who FROM marker", vec![], 100).await?;
    let batches: Vec<_> = q.batches.try_collect().await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

fn degraded(b: &FailoverBackend) -> Failover {
    b.failover().expect("a pool with backups reports failover")
}

fn assert_read_only(e: &Error, reads: &str) {
    match e {
        Error::ReadOnly { pool, reads: r, .. } => {
            assert_eq!(pool, "fo");
            assert!(r.contains(reads), "{r}");
        }
        other => panic!("expected the read-only error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn reads_fail_over_writes_are_refused_and_the_probe_brings_the_primary_back() {
    let (b, primary, backups) = pool(1);
    primary.set_default(Step::ok(2));
    backups[0].set_default(Step::ok(5));
    assert_eq!(read(&b).await.unwrap(), 2);
    assert_eq!(
        degraded(&b),
        Failover {
            degraded: false,
            serving: Serving::Primary
        }
    );

    // Primary down: reads are answered by the backup, none fails.
    primary.set_default(Step::down());
    let down_at = Instant::now();
    for _ in 0..3 {
        assert_eq!(read(&b).await.unwrap(), 5);
    }
    assert_eq!(
        degraded(&b),
        Failover {
            degraded: true,
            serving: Serving::Backup(1)
        }
    );
    // Its breaker is closed in this fake, so every read tried the primary first.
    assert_eq!(primary.calls(Verb::Query), 4);

    // Writes go to the primary only, and are refused as read-only.
    let e = b.execute("INSERT", vec![]).await.unwrap_err();
    assert_read_only(&e, "reads are served by backup 1");
    let e = b.execute_batch(vec![], true).await.unwrap_err();
    assert_read_only(&e, "reads are served by backup 1");
    let e = b.begin(TxOptions::default()).await.err().unwrap();
    assert_read_only(&e, "reads are served by backup 1");
    assert_eq!(backups[0].calls(Verb::Execute), 0);
    assert_eq!(backups[0].calls(Verb::Batch), 0);
    assert_eq!(backups[0].calls(Verb::Begin), 0);

    // The probe tries the primary once per cool-down, not before.
    assert!(timeout(COOLDOWN / 2, primary.reached(Verb::Health, 1))
        .await
        .is_err());
    primary.reached(Verb::Health, 1).await;
    assert_eq!(Instant::now() - down_at, COOLDOWN);
    primary.reached(Verb::Health, 2).await;
    assert_eq!(Instant::now() - down_at, COOLDOWN * 2);
    assert!(degraded(&b).degraded);

    // Primary back: the next probe finds it, reads and writes go to it again.
    primary.set_default(Step::ok(2));
    primary.reached(Verb::Health, 3).await;
    wait_until_sync(COOLDOWN, "the probe's success ends degraded mode", || {
        !degraded(&b).degraded
    })
    .await;
    assert_eq!(degraded(&b).serving, Serving::Primary);
    let backup_reads = backups[0].calls(Verb::Query);
    assert_eq!(read(&b).await.unwrap(), 2);
    assert_eq!(b.execute("INSERT", vec![]).await.unwrap(), 2);
    assert_eq!(backups[0].calls(Verb::Query), backup_reads);
    // The probe stopped: no health check in the next cool-downs.
    assert!(timeout(COOLDOWN * 3, primary.reached(Verb::Health, 4))
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_skips_the_primary_and_a_write_finds_it_back() {
    let (b, primary, backups) = pool(1);
    primary.set_default(Step::down());
    assert_eq!(read(&b).await.unwrap(), 1);
    // The primary's breaker opens: reads stop trying it.
    primary.set_state(|s| s.circuit = CircuitState::Open);
    for _ in 0..3 {
        assert_eq!(read(&b).await.unwrap(), 1);
    }
    assert_eq!(primary.calls(Verb::Query), 1);
    assert_eq!(backups[0].calls(Verb::Query), 4);
    // A write that reaches the primary and works ends degraded mode at once.
    primary.set_default(Step::ok(3));
    primary.set_state(|s| s.circuit = CircuitState::Closed);
    assert_eq!(b.execute("UPDATE", vec![]).await.unwrap(), 3);
    assert_eq!(
        degraded(&b),
        Failover {
            degraded: false,
            serving: Serving::Primary
        }
    );
    assert_eq!(read(&b).await.unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn backups_are_tried_in_order_and_none_left_is_unavailable() {
    let (b, primary, backups) = pool(2);
    primary.set_default(Step::down());
    backups[0].set_default(Step::down());
    backups[1].set_default(Step::ok(7).after(Duration::from_millis(40)));
    let started = Instant::now();
    assert_eq!(read(&b).await.unwrap(), 7);
    assert_eq!(Instant::now() - started, Duration::from_millis(40));
    assert_eq!(degraded(&b).serving, Serving::Backup(2));
    assert_eq!(backups[0].calls(Verb::Query), 1);

    backups[1].set_default(Step::down());
    let e = read(&b).await.unwrap_err();
    let Error::Unavailable { message: m, .. } = &e else {
        panic!("expected unavailable, got {e:?}")
    };
    assert!(m.contains("primary and every backup unavailable"), "{m}");
    assert!(m.contains("backup 1: ") && m.contains("backup 2: "), "{m}");
    assert_eq!(
        degraded(&b),
        Failover {
            degraded: true,
            serving: Serving::None
        }
    );
    let e = b.execute("INSERT", vec![]).await.unwrap_err();
    assert_read_only(&e, "reads go to the first backup that answers");
}

/// A statement the database rejects with SQLSTATE `code`.
fn rejected(code: &'static str) -> Step {
    Step::fail(move || Error::Database {
        message: format!("rejected (fake, SQLSTATE {code})"),
        code: Some(code.into()),
    })
}

#[tokio::test(start_paused = true)]
async fn a_write_a_backup_refuses_is_the_read_only_error() {
    let (b, primary, backups) = pool(1);
    primary.set_default(Step::down());
    // What a backup opened read-only answers to `INSERT … RETURNING` sent as a query.
    backups[0].then(Verb::Query, rejected("25006"));
    let e = read(&b).await.unwrap_err();
    assert_read_only(&e, "backup 1 serves reads only and refused the statement");
    assert_eq!(e.db_code(), None);
    // Any other error of a backup is the caller's, unchanged.
    backups[0].then(Verb::Query, rejected("42P01"));
    let e = read(&b).await.unwrap_err();
    assert_eq!(e.db_code(), Some("42P01"));
    // So is a statement error of the primary: no failover for it.
    primary.set_default(Step::ok(1));
    primary.then(Verb::Query, rejected("42601"));
    let before = backups[0].calls(Verb::Query);
    let e = read(&b).await.unwrap_err();
    assert_eq!(e.db_code(), Some("42601"));
    assert_eq!(backups[0].calls(Verb::Query), before);
}

#[tokio::test(start_paused = true)]
async fn a_health_check_while_the_primary_is_down_names_the_serving_backup() {
    let (b, primary, backups) = pool(2);
    primary.set_default(Step::down());
    backups[0].set_default(Step::down());
    assert!(matches!(
        b.health_check().await,
        Err(Error::Unavailable { .. })
    ));
    assert_eq!(
        degraded(&b),
        Failover {
            degraded: true,
            serving: Serving::Backup(2)
        }
    );
    assert_eq!(backups[1].calls(Verb::Health), 1);
    primary.set_default(Step::ok(1));
    b.health_check().await.unwrap();
    assert_eq!(
        degraded(&b),
        Failover {
            degraded: false,
            serving: Serving::Primary
        }
    );
}
