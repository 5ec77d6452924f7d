//! A backend for the resilience layer's unit tests: each call takes the next scripted
//! outcome (success once the script is spent) and is counted.
use arrow::datatypes::Schema;
use async_trait::async_trait;
use dbpool_config::BackendKind;
use dbpool_core::{
    Backend, BatchOutcome, CircuitState, Error, Executor, Param, PoolState, QueryStream, Result,
    Statement, UnavailableCause,
};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// A backend that answers from a script.
#[derive(Default)]
pub struct Scripted {
    script: Mutex<VecDeque<Error>>,
    calls: AtomicUsize,
    /// What `state()` reports as the circuit.
    pub circuit: Mutex<CircuitState>,
}

impl Scripted {
    /// Fails its next calls with `errors`, in order, then succeeds.
    pub fn failing(errors: impl IntoIterator<Item = Error>) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::new(errors.into_iter().collect()),
            ..Default::default()
        })
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Relaxed)
    }

    fn next(&self) -> Result<()> {
        self.calls.fetch_add(1, Relaxed);
        self.script.lock().pop_front().map_or(Ok(()), Err)
    }
}

/// An `Unavailable` error of this cause.
pub fn down(cause: UnavailableCause) -> Error {
    Error::unavailable(cause, format!("{} failure", cause.name()))
}

#[async_trait]
impl Executor for Scripted {
    async fn query(&self, _: &str, _: Vec<Param>, _: usize) -> Result<QueryStream> {
        self.next()?;
        Ok(QueryStream {
            schema: Arc::new(Schema::empty()),
            batches: Box::pin(futures::stream::empty()),
        })
    }

    async fn execute(&self, _: &str, _: Vec<Param>) -> Result<u64> {
        self.next().map(|()| 1)
    }
}

#[async_trait]
impl Backend for Scripted {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    async fn execute_batch(&self, _: Vec<Statement>, _: bool) -> Result<BatchOutcome> {
        self.next().map(|()| Vec::new())
    }

    async fn health_check(&self) -> Result<()> {
        self.next()
    }

    fn state(&self) -> PoolState {
        PoolState {
            circuit: *self.circuit.lock(),
            ..PoolState::default()
        }
    }
}
