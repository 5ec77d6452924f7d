//! Tests of the audit log: the lines' JSON, fingerprints, the file's mode, reopening
//! after a rename (directly and on SIGHUP), flushing and dropping on a full queue.
use super::*;
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;

fn record<'a>(pool: &'a str, method: &'a str, sql: Option<&'a str>) -> AuditRecord<'a> {
    AuditRecord {
        tenant: Some("orders"),
        principal: "token",
        peer: Some("10.1.2.3:40000".parse().unwrap()),
        pool,
        method,
        sql,
        rows: Some(3),
        code: "OK",
        duration: Duration::from_micros(12_345),
    }
}

fn config(path: &Path, statements: AuditStatements) -> AuditConfig {
    AuditConfig {
        path: path.to_str().unwrap().to_string(),
        statements,
    }
}

/// The file's lines, each parsed as one JSON object.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn pools(path: &Path) -> Vec<String> {
    lines(path)
        .iter()
        .map(|v| v["pool"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_line_holds_every_field_and_nothing_else() {
    let now = chrono::DateTime::parse_from_rfc3339("2024-02-29T23:59:58.1239Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let r = record("orders", "dbpool.v1.PoolService/Execute", Some("select 1"));
    let line = String::from_utf8(format_line(&r, AuditStatements::Fingerprint, now)).unwrap();
    assert_eq!(
        line,
        r#"{"ts":"2024-02-29T23:59:58.123Z","tenant":"orders","principal":"token","peer":"10.1.2.3:40000","pool":"orders","method":"dbpool.v1.PoolService/Execute","statement":"select ?","rows":3,"code":"OK","duration_ms":12.345}"#
    );
    let bare = AuditRecord {
        tenant: None,
        principal: "none",
        peer: None,
        pool: "",
        method: "dbpool.v1.PoolService/CreatePool",
        sql: None,
        rows: None,
        code: "UNAUTHENTICATED",
        duration: Duration::ZERO,
    };
    let v: Value = serde_json::from_slice(&format_line(&bare, AuditStatements::Full, now)).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = [
        "code",
        "duration_ms",
        "method",
        "peer",
        "pool",
        "principal",
        "rows",
        "statement",
        "tenant",
        "ts",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert!(v["tenant"].is_null() && v["peer"].is_null());
    assert!(v["statement"].is_null() && v["rows"].is_null());
    assert_eq!(v["duration_ms"].as_f64(), Some(0.0));
    assert_eq!(v["code"], "UNAUTHENTICATED");
}

#[test]
fn lines_in_the_file_parse_with_fingerprinted_or_full_statements() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "INSERT INTO t (name, card) VALUES ('Ann', '4111 1111') -- note";
    for (statements, expected) in [
        (
            AuditStatements::Fingerprint,
            "INSERT INTO t (name, card) VALUES (?)",
        ),
        (AuditStatements::Full, sql),
    ] {
        let path = dir.path().join(format!("{statements:?}.jsonl"));
        let log = AuditLog::open(&config(&path, statements)).unwrap();
        log.record(&record(
            "orders",
            "dbpool.v1.PoolService/Execute",
            Some(sql),
        ));
        log.record(&record("reports", "dbpool.v1.PoolService/Commit", None));
        log.flush();
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["statement"], expected);
        assert_eq!(got[0]["tenant"], "orders");
        assert_eq!(got[0]["principal"], "token");
        assert_eq!(got[0]["peer"], "10.1.2.3:40000");
        assert_eq!(got[0]["method"], "dbpool.v1.PoolService/Execute");
        assert_eq!(got[0]["rows"], 3);
        assert_eq!(got[0]["code"], "OK");
        assert_eq!(got[0]["duration_ms"].as_f64(), Some(12.345));
        let ts = got[0]["ts"].as_str().unwrap();
        assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
        chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        assert!(got[1]["statement"].is_null());
        assert_eq!(got[1]["pool"], "reports");
        assert_eq!(log.dropped(), 0);
    }
}

#[test]
fn hostile_strings_are_just_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&config(&path, AuditStatements::Full)).unwrap();
    let pool = "Bearer s3cr3t-token\",\"token\":\"x\"}\n{\"forged\":1";
    let method = "authorization: Basic b3JkZXJzOnMzY3IzdA==\r\n\u{7f}\u{2028}";
    log.record(&record(pool, method, Some("select '\\\"\n'")));
    log.flush();
    let got = lines(&path);
    assert_eq!(got.len(), 1, "one line, whatever the values hold");
    let v = got[0].as_object().unwrap();
    assert_eq!(v["pool"], pool);
    assert_eq!(v["method"], method);
    assert_eq!(v["statement"], "select '\\\"\n'");
    assert!(!v.contains_key("token") && !v.contains_key("forged"));
}

#[test]
fn the_file_is_created_0600_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = AuditLog::open(&config(&path, AuditStatements::Fingerprint)).unwrap();
    log.record(&record("a", "m", None));
    log.flush();
    let got = lines(&path);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["earlier"], true);
    assert_eq!(got[1]["pool"], "a");

    let fresh = dir.path().join("fresh.jsonl");
    let _log = AuditLog::open(&config(&fresh, AuditStatements::Fingerprint)).unwrap();
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let missing = dir.path().join("no/such/dir/audit.jsonl");
    let err = AuditLog::open(&config(&missing, AuditStatements::Fingerprint)).err();
    assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
}

#[test]
fn reopen_after_a_rename_writes_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let log = AuditLog::open(&config(&path, AuditStatements::Fingerprint)).unwrap();
    log.record(&record("before", "m", None));
    log.flush();
    std::fs::rename(&path, &rotated).unwrap();
    // Until reopened, the moved file keeps receiving lines (as logrotate expects).
    log.record(&record("moved", "m", None));
    log.flush();
    assert!(!path.exists());
    log.reopen();
    log.record(&record("after", "m", None));
    log.flush();
    assert_eq!(pools(&rotated), ["before", "moved"]);
    assert_eq!(pools(&path), ["after"]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_failed_reopen_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("logs");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("audit.jsonl");
    let log = AuditLog::open(&config(&path, AuditStatements::Fingerprint)).unwrap();
    let moved = dir.path().join("moved");
    std::fs::rename(&sub, &moved).unwrap();
    log.reopen();
    log.record(&record("kept", "m", None));
    log.flush();
    assert_eq!(pools(&moved.join("audit.jsonl")), ["kept"]);
}

#[test]
fn stdout_opens_and_ignores_reopen() {
    let log = AuditLog::open(&AuditConfig {
        path: "stdout".into(),
        statements: AuditStatements::Fingerprint,
    })
    .unwrap();
    log.reopen();
    log.flush();
    assert_eq!(log.dropped(), 0);
}

/// A sink whose first write waits until the test lets it go.
struct Gate {
    entered: mpsc::SyncSender<()>,
    open: mpsc::Receiver<()>,
    seen: Arc<parking_lot::Mutex<Vec<u8>>>,
    waited: bool,
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.waited {
            self.waited = true;
            self.entered.send(()).unwrap();
            self.open.recv().unwrap();
        }
        self.seen.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_and_counts_lines() {
    let (entered_tx, entered) = mpsc::sync_channel(1);
    let (open, open_rx) = mpsc::sync_channel(1);
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let gate = Gate {
        entered: entered_tx,
        open: open_rx,
        seen: seen.clone(),
        waited: false,
    };
    let log = AuditLog::start(Box::new(gate), None, AuditStatements::Fingerprint, 2).unwrap();
    // The writer takes the first line, finds the queue empty and blocks flushing it.
    log.record(&record("p1", "m", None));
    entered.recv().unwrap();
    log.record(&record("p2", "m", None));
    log.record(&record("p3", "m", None));
    assert_eq!(log.dropped(), 0);
    log.record(&record("p4", "m", None));
    log.record(&record("p5", "m", None));
    assert_eq!(log.dropped(), 2);
    open.send(()).unwrap();
    log.flush();
    let text = String::from_utf8(seen.lock().clone()).unwrap();
    let got: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["pool"].to_string())
        .collect();
    assert_eq!(got, ["\"p1\"", "\"p2\"", "\"p3\""]);
}

#[tokio::test]
async fn sighup_reopens_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let log = AuditLog::open(&config(&path, AuditStatements::Fingerprint)).unwrap();
    // Installed before the signal is sent: SIGHUP no longer ends the test process.
    let hangups = signal(SignalKind::hangup()).unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reopen_on(hangups, log.clone(), cancel.clone()));
    log.record(&record("before", "m", None));
    log.flush();
    std::fs::rename(&path, &rotated).unwrap();

    let reopened = log.reopened.notified();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(30), reopened)
        .await
        .expect("SIGHUP reopens the log");
    log.record(&record("after", "m", None));
    log.flush();
    assert_eq!(pools(&rotated), ["before"]);
    assert_eq!(pools(&path), ["after"]);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task ends when cancelled")
        .unwrap();
}
