//! Per-pool counters and latency histograms: the one source of the GetMetrics RPC and the
//! Prometheus endpoint.
use crate::PoolState;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What kind of call a counter records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallKind {
    /// A streamed query (gRPC Query, Flight DoGet).
    Query,
    /// A single statement.
    Execute,
    /// A batch of statements.
    Batch,
    /// A bulk insert.
    BulkInsert,
}

impl CallKind {
    /// Every kind, in label order.
    pub const ALL: [CallKind; 4] = [
        CallKind::Query,
        CallKind::Execute,
        CallKind::Batch,
        CallKind::BulkInsert,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Query => "query",
            CallKind::Execute => "execute",
            CallKind::Batch => "batch",
            CallKind::BulkInsert => "bulk_insert",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of every latency histogram.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A lock-free histogram of durations with `LATENCY_BUCKETS`.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// A histogram at one moment, Prometheus-shaped: cumulative bucket counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations ≤ bound), `+Inf` excluded.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Cumulative counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut acc = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| {
                acc += c.load(Relaxed);
                (*b, acc)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum: self.sum_micros.load(Relaxed) as f64 / 1e6,
            count: self.count.load(Relaxed),
        }
    }
}

/// Monotonic counters of one pool.
#[derive(Debug, Default)]
pub struct PoolCounters {
    calls: [AtomicU64; 4],
    durations: [Histogram; 4],
    errors: Mutex<BTreeMap<&'static str, u64>>,
    rows_streamed: AtomicU64,
    bytes_streamed: AtomicU64,
}

impl PoolCounters {
    /// Counts one call of `kind`.
    pub fn record_call(&self, kind: CallKind) {
        self.calls[kind.index()].fetch_add(1, Relaxed);
    }

    /// Records how long a call of `kind` took (for queries: until its stream ended).
    pub fn record_duration(&self, kind: CallKind, d: Duration) {
        self.durations[kind.index()].observe(d);
    }

    /// Counts one failed call by its status code name (e.g. `INVALID_ARGUMENT`).
    pub fn record_error(&self, code: &'static str) {
        *self.errors.lock().entry(code).or_default() += 1;
    }

    /// Counts rows and Arrow bytes sent to a client.
    pub fn record_rows(&self, rows: u64, bytes: u64) {
        self.rows_streamed.fetch_add(rows, Relaxed);
        self.bytes_streamed.fetch_add(bytes, Relaxed);
    }

    /// A copy of the counters together with the pool state.
    pub fn snapshot(&self, state: PoolState, acquire_wait: HistogramSnapshot) -> PoolSnapshot {
        let errors = self.errors.lock().clone();
        PoolSnapshot {
            state,
            calls: CallKind::ALL
                .iter()
                .map(|k| (*k, self.calls[k.index()].load(Relaxed)))
                .collect(),
            durations: CallKind::ALL
                .iter()
                .map(|k| (*k, self.durations[k.index()].snapshot()))
                .collect(),
            errors,
            rows_streamed: self.rows_streamed.load(Relaxed),
            bytes_streamed: self.bytes_streamed.load(Relaxed),
            acquire_wait,
        }
    }
}

/// Counters, histograms and pool state of one pool at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSnapshot {
    /// Connections.
    pub state: PoolState,
    /// Calls started, by kind.
    pub calls: Vec<(CallKind, u64)>,
    /// Call durations, by kind.
    pub durations: Vec<(CallKind, HistogramSnapshot)>,
    /// Failed calls by status code name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Rows sent to clients.
    pub rows_streamed: u64,
    /// Arrow bytes sent to clients.
    pub bytes_streamed: u64,
    /// Time calls waited for a connection.
    pub acquire_wait: HistogramSnapshot,
}

impl PoolSnapshot {
    /// Calls of one kind.
    pub fn calls_of(&self, kind: CallKind) -> u64 {
        self.calls
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// Failed calls of every code.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.0005, 1));
        assert_eq!(s.buckets[3], (0.005, 2));
        assert_eq!(s.buckets.last().unwrap().1, 2); // 60 s only in +Inf
        assert!((s.sum - 60.0033).abs() < 1e-9);
    }
}
