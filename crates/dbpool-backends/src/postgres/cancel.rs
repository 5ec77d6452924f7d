//! Cancels the statement of a call that goes away before it ends (the caller cancelled,
//! or its gRPC deadline passed): PostgreSQL's cancel request, sent before the connection
//! goes back to the pool so the cancel can never hit another caller's statement.
use super::AsClient;
use crate::tx::spawn_cleanup;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_postgres::NoTls;

/// Owns the connection while a statement runs on it.
pub struct Cancelling<C: AsClient> {
    conn: Option<C>,
    armed: AtomicBool,
}

impl<C: AsClient> Cancelling<C> {
    /// Arms the guard around `conn`.
    pub fn new(conn: C) -> Self {
        Cancelling {
            conn: Some(conn),
            armed: AtomicBool::new(true),
        }
    }

    /// The client to run on.
    pub fn client(&self) -> &tokio_postgres::Client {
        self.inner().client()
    }

    /// The guarded connection.
    pub fn inner(&self) -> &C {
        self.conn.as_ref().expect("present until drop")
    }

    /// The statement ended (rows read or error received): nothing to cancel.
    pub fn done(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }
}

impl<C: AsClient> Drop for Cancelling<C> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let token = conn.client().cancel_token();
        spawn_cleanup(async move {
            if let Err(e) = token.cancel_query(NoTls).await {
                tracing::warn!(error = %e, "cancel request failed");
            }
            tracing::debug!("statement of an abandoned call cancelled");
            drop(conn);
        });
    }
}
