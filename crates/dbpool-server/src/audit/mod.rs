//! The audit log (`[audit]`): one JSON line per call that changes something and per
//! refused call, appended by a writer thread so a call never waits on the disk. A full
//! queue drops lines (counted) rather than slowing calls; SIGHUP reopens the file.
//!
//! A line holds who (tenant, principal kind, peer), what (pool, method, statement as a
//! fingerprint or in full) and how it went (rows, code, duration); never a credential.
pub mod budget;
mod writer;

use dbpool_config::{AuditConfig, AuditStatements};
use dbpool_core::fingerprint::fingerprint;
use dbpool_core::LogLimiter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use writer::{Msg, Writer};

/// Lines the writer thread's queue holds before [`AuditLog::record`] drops them.
pub const QUEUE_LINES: usize = 65536;
/// At most one "queue full" warning per this interval.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One audited call.
pub struct AuditRecord<'a> {
    /// The caller's tenant, if it was identified.
    pub tenant: Option<&'a str>,
    /// How the caller proved who it is: "token" | "jwt" | "certificate" | "none".
    pub principal: &'a str,
    /// The caller's address (none on a Unix socket).
    pub peer: Option<SocketAddr>,
    /// The pool the call names; "" when none.
    pub pool: &'a str,
    /// The gRPC method, e.g. "dbpool.v1.PoolService/Execute".
    pub method: &'a str,
    /// The raw SQL; the log applies `[audit] statements = fingerprint|full`.
    pub sql: Option<&'a str>,
    /// Rows returned or affected, when known.
    pub rows: Option<u64>,
    /// The gRPC status code name: "OK", "PERMISSION_DENIED", …
    pub code: &'a str,
    /// How long the call took.
    pub duration: Duration,
}

/// The audit log: formats lines on the caller's thread and hands them to a writer
/// thread through a bounded queue.
pub struct AuditLog {
    tx: SyncSender<Msg>,
    statements: AuditStatements,
    /// Tells the writer to reopen its file before the next line.
    reopen: Arc<AtomicBool>,
    /// Woken (one stored permit) by every [`reopen`](Self::reopen).
    reopened: Notify,
    dropped: AtomicU64,
    drop_log: LogLimiter,
    /// Lines of calls no tenant was found for, per second.
    anonymous: budget::Budget,
}

impl AuditLog {
    /// Opens `[audit]`: `path` is "stdout" or a file (created 0600, appended to), and
    /// starts its writer thread.
    pub fn open(cfg: &AuditConfig) -> std::io::Result<Arc<AuditLog>> {
        let (out, path): (Box<dyn std::io::Write + Send>, _) = if cfg.path == "stdout" {
            (Box::new(std::io::stdout()), None)
        } else {
            let path = PathBuf::from(&cfg.path);
            (Box::new(writer::open_file(&path)?), Some(path))
        };
        Self::start(out, path, cfg.statements, QUEUE_LINES)
    }

    /// A log writing to `out` (the file at `path`, if any) through a queue of
    /// `capacity` lines.
    fn start(
        out: Box<dyn std::io::Write + Send>,
        path: Option<PathBuf>,
        statements: AuditStatements,
        capacity: usize,
    ) -> std::io::Result<Arc<AuditLog>> {
        let (tx, rx) = sync_channel(capacity);
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer::new(out, path, reopen.clone());
        std::thread::Builder::new()
            .name("dbpool-audit".into())
            .spawn(move || writer.run(rx))?;
        Ok(Arc::new(AuditLog {
            tx,
            statements,
            reopen,
            reopened: Notify::new(),
            dropped: AtomicU64::new(0),
            drop_log: LogLimiter::new(DROP_LOG_INTERVAL),
            anonymous: budget::Budget::default(),
        }))
    }

    /// Whether the line of a call refused as UNAUTHENTICATED is written: at most
    /// [`budget::ANONYMOUS_LINES_PER_SECOND`] a second, so a flood of strangers' calls
    /// cannot push the lines of writes out of the queue (the rest are counted in
    /// [`anonymous_skipped`](Self::anonymous_skipped)).
    pub fn admits_anonymous(&self) -> bool {
        self.anonymous.take(std::time::Instant::now())
    }

    /// Lines of UNAUTHENTICATED calls that were not written.
    pub fn anonymous_skipped(&self) -> u64 {
        self.anonymous.skipped()
    }

    /// Formats one JSON line and hands it to the writer without blocking; if the
    /// writer's queue is full, the line is dropped and counted ([`dropped`](Self::dropped)).
    pub fn record(&self, r: &AuditRecord<'_>) {
        let line = format_line(r, self.statements, chrono::Utc::now());
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(suppressed) = self.drop_log.check() {
                    tracing::warn!(
                        dropped_total = total,
                        suppressed,
                        "audit log queue full: dropping audit lines"
                    );
                }
            }
        }
    }

    /// The file is reopened before the next write (logrotate moved it). No-op for stdout.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        self.reopened.notify_one();
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line recorded so far is written and flushed (tests, shutdown).
    pub fn flush(&self) {
        let (done_tx, done_rx) = sync_channel(1);
        // Blocks while the queue is full: the flush must come after the queued lines.
        if self.tx.send(Msg::Flush(done_tx)).is_ok() {
            // An error means the writer thread is gone; nothing is left to wait for.
            let _ = done_rx.recv();
        }
    }
}

/// Reopens `log` on every SIGHUP until `cancel` fires.
pub async fn reopen_on_sighup(log: Arc<AuditLog>, cancel: CancellationToken) {
    match signal(SignalKind::hangup()) {
        Ok(hangups) => reopen_on(hangups, log, cancel).await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the audit log is not reopened")
        }
    }
}

/// Reopens `log` on every signal `hangups` receives until `cancel` fires.
async fn reopen_on(mut hangups: Signal, log: Arc<AuditLog>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            got = hangups.recv() => match got {
                Some(()) => log.reopen(),
                None => return,
            },
        }
    }
}

/// One audit line (no newline): `ts`, `tenant`, `principal`, `peer`, `pool`, `method`,
/// `statement`, `rows`, `code`, `duration_ms`.
fn format_line(
    r: &AuditRecord<'_>,
    statements: AuditStatements,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    out.extend_from_slice(b"{\"ts\":");
    json_str(&mut out, &ts);
    out.extend_from_slice(b",\"tenant\":");
    json_opt_str(&mut out, r.tenant);
    out.extend_from_slice(b",\"principal\":");
    json_str(&mut out, r.principal);
    out.extend_from_slice(b",\"peer\":");
    json_opt_str(&mut out, r.peer.map(|p| p.to_string()).as_deref());
    out.extend_from_slice(b",\"pool\":");
    json_str(&mut out, r.pool);
    out.extend_from_slice(b",\"method\":");
    json_str(&mut out, r.method);
    out.extend_from_slice(b",\"statement\":");
    let statement = r.sql.map(|sql| match statements {
        AuditStatements::Fingerprint => fingerprint(sql),
        AuditStatements::Full => sql.to_string(),
    });
    json_opt_str(&mut out, statement.as_deref());
    out.extend_from_slice(b",\"rows\":");
    match r.rows {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"code\":");
    json_str(&mut out, r.code);
    let ms = r.duration.as_secs_f64() * 1000.0;
    out.extend_from_slice(format!(",\"duration_ms\":{ms:.3}}}").as_bytes());
    out
}

/// `s` as a JSON string: quotes, backslashes, control characters (newlines) escaped,
/// so no value can end the line or the object early.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Serialising a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests;
