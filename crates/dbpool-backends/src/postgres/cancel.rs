//! Cancels the statement of a call that goes away before it ends (the caller cancelled,
//! or its gRPC deadline passed): PostgreSQL's cancel request, sent before the connection
//! goes back to the pool so the cancel can never hit another caller's statement, and
//! repeated until the session is idle (a cancel can arrive before the statement starts).
use super::{client, PgSession};
use crate::exec::spawn_cleanup;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Cancel requests sent, 250 ms × attempt apart, before waiting the statement out.
const CANCEL_ATTEMPTS: u32 = 4;

/// Owns the connection while a statement runs on it.
pub struct Cancelling {
    conn: Option<PgSession>,
    armed: AtomicBool,
}

impl Cancelling {
    /// Arms the guard around `conn`.
    pub fn new(conn: PgSession) -> Self {
        Cancelling {
            conn: Some(conn),
            armed: AtomicBool::new(true),
        }
    }

    /// The client to run on.
    pub fn client(&self) -> &tokio_postgres::Client {
        client(self.inner())
    }

    /// The guarded connection.
    pub fn inner(&self) -> &PgSession {
        self.conn.as_ref().expect("present until drop")
    }

    /// The statement ended: the connection back, nothing to cancel.
    pub fn finish(mut self) -> PgSession {
        self.conn.take().expect("present until drop")
    }

    /// The statement ended (rows read or error received): nothing to cancel.
    pub fn done(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }
}

impl Drop for Cancelling {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let token = client(&conn).cancel_token();
        // The cancel request goes over a new connection, with the pool's TLS settings.
        let tls = conn.tls().clone();
        spawn_cleanup(async move {
            // A cancel that reaches PostgreSQL before the statement started does nothing:
            // cancel again until an empty query comes back, i.e. the session is idle.
            for attempt in 1..=CANCEL_ATTEMPTS {
                if let Err(e) = token.cancel_query(tls.clone()).await {
                    tracing::warn!(error = %e, "cancel request failed");
                    break;
                }
                let wait = Duration::from_millis(250 * u64::from(attempt));
                if tokio::time::timeout(wait, client(&conn).simple_query(""))
                    .await
                    .is_ok()
                {
                    // Idle again (or closed, and then never reused).
                    tracing::debug!("statement of an abandoned call cancelled");
                    return;
                }
            }
            // Still busy: the connection goes back only once the statement has ended,
            // never to a caller whose statement would queue behind it.
            tracing::warn!("an abandoned statement ignored {CANCEL_ATTEMPTS} cancel requests");
            let _ = client(&conn).simple_query("").await;
        });
    }
}
