//! What the Flight service keeps per server, beside the calls it makes: the Flight SQL
//! prepared statements of every client connection. The server's housekeeping tells it
//! when a connection closes and when to reap; tests watch it.
use super::prepared::PreparedRegistry;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;

/// Per-server Flight state, shared by the Flight service and the server's housekeeping.
pub struct FlightState {
    prepared: PreparedRegistry,
}

impl FlightState {
    /// Empty state bounded by `[server.limits]`.
    pub fn new(limits: &dbpool_config::Limits) -> Arc<Self> {
        Arc::new(FlightState {
            prepared: PreparedRegistry::new(
                limits.max_prepared_statements_per_connection,
                limits.prepared_statement_idle_timeout(),
            ),
        })
    }

    pub(super) fn prepared(&self) -> &PreparedRegistry {
        &self.prepared
    }

    /// Frees what a client connection that went away held; returns how many statements.
    pub fn connection_closed(&self, conn: u64) -> usize {
        self.prepared.owner_gone(conn)
    }

    /// Closes the prepared statements idle for their timeout; returns how many.
    pub fn reap_idle(&self) -> usize {
        self.reap_idle_at(Instant::now())
    }

    /// [`reap_idle`](Self::reap_idle) as of `now` (a test can reap as if time had passed).
    pub fn reap_idle_at(&self, now: Instant) -> usize {
        self.prepared.reap_idle_at(now)
    }

    /// Prepared statements open, all connections together.
    pub fn open_prepared_statements(&self) -> usize {
        self.prepared.len()
    }

    /// The number of open prepared statements, as it changes.
    pub fn watch_prepared_statements(&self) -> watch::Receiver<usize> {
        self.prepared.watch()
    }
}
