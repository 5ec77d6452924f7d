//! Per-pool call counters, shared by the GetMetrics RPC and (later) the Prometheus endpoint.
use crate::{Error, PoolState};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What kind of call a counter records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A streamed query (gRPC Query or Flight DoGet).
    Query,
    /// A single statement.
    Execute,
    /// A batch of statements.
    Batch,
}

/// Monotonic counters of one pool.
#[derive(Debug, Default)]
pub struct PoolCounters {
    queries: AtomicU64,
    executes: AtomicU64,
    batches: AtomicU64,
    errors: AtomicU64,
    rows_streamed: AtomicU64,
}

impl PoolCounters {
    /// Counts one call of `kind`.
    pub fn record_call(&self, kind: CallKind) {
        let c = match kind {
            CallKind::Query => &self.queries,
            CallKind::Execute => &self.executes,
            CallKind::Batch => &self.batches,
        };
        c.fetch_add(1, Relaxed);
    }

    /// Counts one failed call.
    pub fn record_error(&self, _error: &Error) {
        self.errors.fetch_add(1, Relaxed);
    }

    /// Counts rows sent to a client.
    pub fn record_rows(&self, rows: u64) {
        self.rows_streamed.fetch_add(rows, Relaxed);
    }

    /// A consistent-enough copy of the counters together with the pool state.
    pub fn snapshot(&self, state: PoolState) -> PoolSnapshot {
        PoolSnapshot {
            state,
            queries: self.queries.load(Relaxed),
            executes: self.executes.load(Relaxed) + self.batches.load(Relaxed),
            errors: self.errors.load(Relaxed),
            rows_streamed: self.rows_streamed.load(Relaxed),
        }
    }
}

/// Counters and pool state of one pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// Connections.
    pub state: PoolState,
    /// Queries started.
    pub queries: u64,
    /// Executes and batches started.
    pub executes: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Rows sent to clients.
    pub rows_streamed: u64,
}
