//! The server's clock: what its timers (health checks, the reaper of idle transactions
//! and prepared statements, the shutdown grace period) wait on. The default is tokio's
//! time, so a test with paused time (`#[tokio::test(start_paused = true)]`) drives them.
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A source of time for the server's timers.
pub trait Clock: Send + Sync + 'static {
    /// The time now.
    fn now(&self) -> Instant;
    /// Resolves at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
}

/// tokio's time: the real clock, or the paused one of a test.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// Ticks every `period` of a clock, the first tick at once. A tick that comes late
/// (the work after the previous one took long) pushes the later ones back rather than
/// firing them in a burst.
pub struct Ticker {
    clock: Arc<dyn Clock>,
    period: Duration,
    next: Instant,
}

impl Ticker {
    /// A ticker on `clock`.
    pub fn new(clock: Arc<dyn Clock>, period: Duration) -> Self {
        let next = clock.now();
        Ticker {
            clock,
            period,
            next,
        }
    }

    /// The time between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the next tick. Cancel-safe: dropped before it resolves, the next call
    /// waits for the same tick.
    pub async fn tick(&mut self) {
        self.clock.sleep_until(self.next).await;
        self.next = self.clock.now() + self.period;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ticks_at_once_then_every_period_and_late_ticks_push_back() {
        let start = Instant::now();
        let mut t = Ticker::new(Arc::new(TokioClock), Duration::from_millis(250));
        t.tick().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        t.tick().await;
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        // The work after a tick took 600 ms: the next tick is late, then one period on.
        tokio::time::sleep(Duration::from_millis(600)).await;
        t.tick().await;
        assert_eq!(start.elapsed(), Duration::from_millis(850));
        t.tick().await;
        assert_eq!(start.elapsed(), Duration::from_millis(1100));
    }
}
