//! Tests of the error → status conversion: codes, reasons, metadata, bounds, log lines.
use super::*;
use crate::call::{self, Call};
use crate::UnavailableCause;
use std::sync::Arc;

fn status(e: Error) -> Status {
    e.into()
}

#[test]
fn codes() {
    let db = Error::Database {
        message: "relation \"x\" does not exist".into(),
        code: Some("42P01".into()),
    };
    let s = status(db.clone());
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("42P01"));
    let info = s.get_details_error_info().unwrap();
    assert_eq!(info.metadata["sqlstate"], "42P01");
    assert_eq!(
        status(Error::PoolNotFound("p".into())).code(),
        Code::NotFound
    );
    assert_eq!(
        status(Error::AcquireTimeout(std::time::Duration::from_secs(1))).code(),
        Code::ResourceExhausted
    );
    let ro = status(Error::ReadOnly {
        pool: "pg".into(),
        cause: Box::new(Error::unavailable(
            UnavailableCause::Connect,
            "connection refused",
        )),
        reads: "reads are served by backup 1".into(),
    });
    assert_eq!(ro.code(), Code::Unavailable);
    assert_eq!(
        ro.get_details_error_info().unwrap().reason,
        "READ_ONLY_DEGRADED"
    );
    assert!(
        ro.message()
            .contains("read-only degraded mode: primary unavailable (connection refused)"),
        "{}",
        ro.message()
    );
    let tc = status(Error::TransactionControl {
        field: "sql".into(),
        statement: "BEGIN".into(),
        hint: "use BeginTransaction".into(),
    });
    assert_eq!(tc.code(), Code::InvalidArgument);
    let info = tc.get_details_error_info().unwrap();
    assert_eq!(info.reason, "TRANSACTION_CONTROL_STATEMENT");
    assert_eq!(info.metadata["field"], "sql");
    assert_eq!(info.metadata["statement"], "BEGIN");
    let broken = status(Error::TransactionBroken("a statement failed".into()));
    assert_eq!(broken.code(), Code::Aborted);
    assert_eq!(
        broken.get_details_error_info().unwrap().reason,
        "TRANSACTION_ROLLED_BACK"
    );
    let batch = Error::BatchStatement {
        index: 2,
        source: Box::new(db),
    };
    let s = status(batch);
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(
        s.get_details_error_info().unwrap().metadata["statement_index"],
        "2"
    );
}

/// Every cause of an unavailable database is UNAVAILABLE / DATABASE_UNAVAILABLE, as
/// before the causes were told apart; the cause rides along in the metadata.
#[test]
fn unavailable_keeps_its_code_and_reason_and_names_its_cause() {
    use UnavailableCause::*;
    for cause in [Connect, CircuitOpen, Closed, Busy] {
        let s = status(Error::unavailable(cause, "refused"));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "database unavailable: refused");
        let info = s.get_details_error_info().unwrap();
        assert_eq!(info.reason, "DATABASE_UNAVAILABLE");
        assert_eq!(info.metadata["cause"], cause.name());
    }
}

/// The driver's error stays reachable behind ours, and the message does not repeat it.
#[test]
fn the_source_is_kept() {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    let e =
        Error::unavailable(UnavailableCause::Connect, "connect failed: refused").with_source(io);
    let source = std::error::Error::source(&e).expect("a source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("the io error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        e.to_string(),
        "database unavailable: connect failed: refused"
    );
    assert_eq!(
        e.clone().unavailable_cause(),
        Some(UnavailableCause::Connect)
    );
}

#[test]
fn long_messages_are_cut() {
    let e = Error::Database {
        message: "é".repeat(10_000),
        code: None,
    };
    let m = status(e).message().to_string();
    assert!(
        m.len() <= MAX_MESSAGE_BYTES && m.ends_with('…'),
        "{}",
        m.len()
    );
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct Lines(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The warning of a failed call names its pool, method and code with no span around it.
#[test]
fn the_log_line_names_pool_method_and_code() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        Call::new(Some(1), "dbpool.v1.PoolService/Query").sync_scope(|| {
            call::note_pool("pg");
            let _ = status(Error::unavailable(UnavailableCause::Connect, "refused"));
        });
    });
    let text = String::from_utf8(lines.0.lock().clone()).unwrap();
    assert!(text.contains("WARN"), "{text}");
    for part in [
        "pool=pg",
        "method=dbpool.v1.PoolService/Query",
        "code=\"UNAVAILABLE\"",
        "call failed",
    ] {
        assert!(text.contains(part), "{part} missing in {text}");
    }
}
