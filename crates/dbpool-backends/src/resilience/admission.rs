//! How a pool lets callers at its connections: the breaker first, then a bounded queue
//! served in arrival order, the whole wait within the acquire timeout, and the wait cut
//! short with the database's own error as soon as a connect attempt fails.
use super::breaker::Breaker;
use dbpool_config::PoolOptions;
use dbpool_core::{CircuitState, Error, Histogram, HistogramSnapshot, Result, UnavailableCause};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// The latest connect failure of a pool, published to the callers waiting for a
/// connection (bb8 reports it nowhere else: the waiter would sit out its timeout).
pub(crate) struct ConnectWatch {
    last: Mutex<Option<Error>>,
    generation: watch::Sender<u64>,
}

impl ConnectWatch {
    fn new() -> Self {
        ConnectWatch {
            last: Mutex::new(None),
            generation: watch::channel(0).0,
        }
    }

    /// A connect attempt failed with `e`: every caller waiting now hears of it.
    pub(crate) fn publish(&self, e: Error) {
        *self.last.lock() = Some(e);
        self.generation.send_modify(|g| *g += 1);
    }

    fn last(&self) -> Error {
        self.last
            .lock()
            .clone()
            .unwrap_or_else(|| Error::unavailable(UnavailableCause::Connect, "connect failed"))
    }
}

/// The admission state of one pool.
pub(crate) struct Admission {
    breaker: Breaker,
    watch: Arc<ConnectWatch>,
    /// Calls inside `admit` that have no connection yet.
    waiters: AtomicU32,
    max_waiters: u32,
    timeout: Duration,
    timeouts: AtomicU64,
    waits: Histogram,
    /// One permit per connection, handed out first come, first served: bb8 lets a new
    /// caller take a connection that was just returned before the waiter it woke runs,
    /// and that waiter goes to the back of the queue (seen: clients starved for seconds,
    /// and a latency tail twice the mean under load). With the turn taken here, a caller
    /// reaches bb8 only when a connection is there for it.
    turns: Arc<Semaphore>,
}

/// An admission in progress: on drop it leaves the wait queue, and unless it told the
/// breaker how the database is, it gives up a half-open probe it may hold.
struct Pending<'a> {
    breaker: &'a Breaker,
    waiters: &'a AtomicU32,
    queued: bool,
    settled: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.queued {
            self.waiters.fetch_sub(1, Relaxed);
        }
        if !self.settled {
            self.breaker.abandon();
        }
    }
}

impl Admission {
    /// The admission of a pool with these options.
    pub(crate) fn new(options: &PoolOptions) -> Self {
        Admission {
            breaker: Breaker::new(
                options.breaker_threshold,
                Duration::from_millis(options.breaker_cooldown_ms),
            ),
            watch: Arc::new(ConnectWatch::new()),
            waiters: AtomicU32::new(0),
            max_waiters: options.max_waiters,
            timeout: options.acquire_timeout(),
            timeouts: AtomicU64::new(0),
            waits: Histogram::default(),
            turns: Arc::new(Semaphore::new(options.max_connections as usize)),
        }
    }

    /// Where the pool's connect failures go.
    pub(crate) fn watch(&self) -> Arc<ConnectWatch> {
        self.watch.clone()
    }

    /// Admits a caller and runs `checkout` in its turn. Fails fast while the breaker is
    /// open, at once when the queue is full, with the database's error as soon as a
    /// connect attempt fails, and with `AcquireTimeout` when the turn and the checkout
    /// together outlast the acquire timeout. A checkout that times out itself should
    /// say `AcquireTimeout` too. The permit is the turn: held while the connection is.
    pub(crate) async fn admit<C>(
        &self,
        checkout: impl Future<Output = Result<C>>,
    ) -> Result<(OwnedSemaphorePermit, C)> {
        self.breaker.admit()?;
        // Settles the breaker and the waiter count however the call ends, including a
        // caller that goes away (deadline, cancel) while it waits.
        let mut pending = Pending {
            breaker: &self.breaker,
            waiters: &self.waiters,
            queued: false,
            settled: false,
        };
        let mut rx = self.watch.generation.subscribe();
        rx.mark_unchanged();
        // A bounded queue: beyond it, refuse at once instead of piling up.
        if self.waiters.fetch_add(1, Relaxed) >= self.max_waiters {
            self.waiters.fetch_sub(1, Relaxed);
            return Err(Error::ResourceExhausted(format!(
                "{} calls are already waiting for a connection (max_waiters)",
                self.max_waiters
            )));
        }
        pending.queued = true;
        let started = Instant::now();
        // One deadline for the turn and the checkout together (bb8's own timeout, the
        // same length, never ends first).
        let in_turn = tokio::time::timeout(self.timeout, async {
            let turn = self.turns.clone().acquire_owned().await;
            let turn = turn.expect("the pool's semaphore is never closed");
            Ok((turn, checkout.await?))
        });
        let in_turn = async {
            in_turn
                .await
                .unwrap_or(Err(Error::AcquireTimeout(self.timeout)))
        };
        let result = tokio::select! {
            r = in_turn => r,
            _ = rx.changed() => Err(self.watch.last()),
        };
        self.waits.observe(started.elapsed());
        match &result {
            Ok(_) => self.breaker.success(),
            Err(Error::AcquireTimeout(_)) => {
                self.timeouts.fetch_add(1, Relaxed);
                // A probe that learnt nothing lets the next call probe.
                return result;
            }
            Err(e) if e.is_connection_error() => self.breaker.failure(e),
            Err(_) => return result,
        }
        pending.settled = true;
        result
    }

    /// Calls waiting for a connection.
    pub(crate) fn waiters(&self) -> u32 {
        self.waiters.load(Relaxed)
    }

    /// Admissions that timed out.
    pub(crate) fn timeouts(&self) -> u64 {
        self.timeouts.load(Relaxed)
    }

    /// The breaker's state.
    pub(crate) fn circuit(&self) -> CircuitState {
        self.breaker.state()
    }

    /// How long admissions waited.
    pub(crate) fn waits(&self) -> HistogramSnapshot {
        self.waits.snapshot()
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
