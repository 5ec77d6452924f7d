//! A call in progress: its trace span, its row count, its duration recorded when it ends
//! (for queries: when the stream ends or is abandoned), and the transaction it keeps busy.
use dbpool_core::{CallKind, PoolEntry, TxEntry};
use std::sync::Arc;
use std::time::Instant;

/// Dropped when the call ends.
pub struct Timed {
    /// The pool the call runs on.
    pub entry: Arc<PoolEntry>,
    kind: CallKind,
    started: Instant,
    /// The call's span (child of the RPC span).
    pub span: tracing::Span,
    /// Rows streamed or affected.
    pub rows: u64,
    /// A transaction the call runs in: busy (never reaped) until the call ends.
    tx: Option<Arc<TxEntry>>,
}

impl Timed {
    /// Counts the call and opens its span.
    pub fn start(entry: &Arc<PoolEntry>, kind: CallKind) -> Self {
        entry.counters.record_call(kind);
        let span = match crate::conn::call_spans() {
            true => tracing::info_span!(
                "db",
                otel.name = %format!("{} {}", kind.name(), entry.id),
                pool = %entry.id,
                backend = entry.config.kind.name(),
                kind = kind.name(),
                rows = tracing::field::Empty,
                db.statement = tracing::field::Empty,
            ),
            false => tracing::Span::none(),
        };
        Timed {
            entry: entry.clone(),
            kind,
            started: Instant::now(),
            span,
            rows: 0,
            tx: None,
        }
    }

    /// Records the statement on the span when `server.trace_sql` allows it.
    pub fn statement(self, sql: &str, enabled: bool) -> Self {
        if enabled {
            self.span.record("db.statement", sql);
        }
        self
    }

    /// Marks the transaction busy for the call's lifetime.
    pub fn in_tx(mut self, tx: Option<&Arc<TxEntry>>) -> Self {
        self.tx = tx.cloned();
        self
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        self.span.record("rows", self.rows);
        self.entry
            .counters
            .record_duration(self.kind, self.started.elapsed());
        if let Some(tx) = &self.tx {
            tx.touch();
        }
    }
}
