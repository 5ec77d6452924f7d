//! Failover against scripted servers, on paused time: what the caller is told, by type.
use super::*;
use crate::resilience::scripted::{down, Scripted};
use UnavailableCause::*;

/// A kind whose backups refuse writes with SQLSTATE 25006, as PostgreSQL's do.
const READ_ONLY: ReadOnlyBackup = ReadOnlyBackup {
    url: str::to_string,
    refused_write: |e| e.db_code() == Some("25006"),
};

fn group(primary: &Arc<Scripted>, backups: &[&Arc<Scripted>]) -> FailoverBackend {
    let backups = backups
        .iter()
        .map(|b| (*b).clone() as Arc<dyn Backend>)
        .collect();
    FailoverBackend::new(
        "pg",
        primary.clone(),
        backups,
        Duration::from_secs(1),
        &READ_ONLY,
    )
}

#[tokio::test(start_paused = true)]
async fn a_write_while_the_primary_is_down_is_refused_with_its_cause_kept() {
    let primary = Scripted::failing([down(Connect)]);
    let backup = Scripted::failing([]);
    let pool = group(&primary, &[&backup]);
    let e = pool
        .execute("INSERT INTO t VALUES (1)", vec![])
        .await
        .unwrap_err();
    let Error::ReadOnly {
        pool: id, cause, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(id, "pg");
    assert_eq!(cause.unavailable_cause(), Some(Connect));
    assert!(
        e.to_string()
            .contains("primary unavailable (CONNECT failure); writes are refused"),
        "{e}"
    );
    let source = std::error::Error::source(&e).expect("the primary's error");
    assert_eq!(source.to_string(), "database unavailable: CONNECT failure");
    assert_eq!(backup.calls(), 0, "a write never reaches a backup");
    assert!(pool.failover().unwrap().degraded);
}

#[tokio::test(start_paused = true)]
async fn reads_go_to_a_backup_and_its_refusal_of_a_write_is_read_only() {
    let primary = Scripted::failing([down(Connect)]);
    let backup = Scripted::failing([Error::Database {
        message: "cannot execute INSERT in a read-only transaction".into(),
        code: Some("25006".into()),
    }]);
    let pool = group(&primary, &[&backup]);
    let e = pool
        .query("INSERT INTO t VALUES (1) RETURNING 1", vec![], 10)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::ReadOnly { reads, .. } if reads.contains("backup 1 serves reads only")),
        "{e:?}"
    );
    // The primary's circuit is open: reads skip it and the backup answers.
    *primary.circuit.lock() = CircuitState::Open;
    pool.query("SELECT 1", vec![], 10).await.unwrap();
    assert_eq!((primary.calls(), backup.calls()), (1, 2));
    assert_eq!(pool.failover().unwrap().serving, Serving::Backup(1));
}

#[tokio::test(start_paused = true)]
async fn when_every_server_is_down_the_last_backups_cause_decides() {
    let primary = Scripted::failing([down(Connect)]);
    let first = Scripted::failing([down(Closed)]);
    let second = Scripted::failing([down(CircuitOpen)]);
    let pool = group(&primary, &[&first, &second]);
    let e = pool.query("SELECT 1", vec![], 10).await.err().unwrap();
    assert_eq!(e.unavailable_cause(), Some(CircuitOpen));
    assert_eq!(
        e.to_string(),
        "database unavailable: primary and every backup unavailable (primary: CONNECT \
         failure; backup 1: CLOSED failure; backup 2: CIRCUIT_OPEN failure)"
    );
    assert_eq!(pool.failover().unwrap().serving, Serving::None);
}

#[tokio::test(start_paused = true)]
async fn the_probe_finds_the_primary_back() {
    let primary = Scripted::failing([down(Connect), down(Connect)]);
    let pool = group(&primary, &[&Scripted::failing([])]);
    assert!(pool.execute("DELETE FROM t", vec![]).await.is_err());
    assert!(pool.failover().unwrap().degraded);
    // The probe's first health check (after a second) fails, the second succeeds: wait
    // for that on paused time, which runs the probe's timers without real waiting.
    let started = tokio::time::Instant::now();
    while pool.failover().unwrap().degraded {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the primary never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(primary.calls(), 3);
}
