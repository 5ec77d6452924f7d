//! A per-pool circuit breaker: after `threshold` consecutive connection failures calls
//! fail fast for `cooldown`, then one probe may try the database again.
use dbpool_core::{Bare, CircuitState, Error, UnavailableCause};
use parking_lot::Mutex;
use std::time::Duration;
// tokio's clock, so tests drive the cool-down with paused time.
use tokio::time::Instant;

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, last: Error },
    HalfOpen { probing: bool },
}

/// The breaker of one pool.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker; `threshold` 0 never opens.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Lets a call through, or refuses it while the circuit is open.
    pub fn admit(&self) -> Result<(), Error> {
        let mut s = self.state.lock();
        match &*s {
            State::Closed { .. } => Ok(()),
            State::Open { until, last } => {
                let now = Instant::now();
                if now < *until {
                    let wait = until.duration_since(now).as_millis();
                    let message = format!(
                        "circuit open after {} consecutive connection failures (last: {}); next try in {wait} ms",
                        self.threshold,
                        Bare(last)
                    );
                    return Err(Error::unavailable(UnavailableCause::CircuitOpen, message));
                }
                *s = State::HalfOpen { probing: true };
                Ok(())
            }
            State::HalfOpen { probing: true } => Err(Error::unavailable(
                UnavailableCause::CircuitOpen,
                "circuit half-open: a probe is testing the database",
            )),
            State::HalfOpen { probing: false } => {
                *s = State::HalfOpen { probing: true };
                Ok(())
            }
        }
    }

    /// An admitted call ended without learning anything (its caller went away, or it
    /// timed out waiting): if it was the half-open probe, the next call may probe.
    pub fn abandon(&self) {
        let mut s = self.state.lock();
        if let State::HalfOpen { probing: true } = *s {
            *s = State::HalfOpen { probing: false };
        }
    }

    /// A connection was obtained: close the circuit.
    pub fn success(&self) {
        *self.state.lock() = State::Closed { failures: 0 };
    }

    /// Connecting failed with `e`.
    pub fn failure(&self, e: &Error) {
        if self.threshold == 0 {
            return;
        }
        let mut s = self.state.lock();
        let open = match &mut *s {
            State::Closed { failures } => {
                *failures += 1;
                *failures >= self.threshold
            }
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
        };
        if open {
            tracing::warn!(error = %e, cooldown_ms = self.cooldown.as_millis() as u64, "circuit opened");
            *s = State::Open {
                until: Instant::now() + self.cooldown,
                last: e.clone(),
            };
        }
    }

    /// The state for status, health and metrics.
    pub fn state(&self) -> CircuitState {
        match &*self.state.lock() {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until, .. } if Instant::now() < *until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn refused() -> Error {
        Error::unavailable(UnavailableCause::Connect, "refused")
    }

    fn is_circuit_open(r: Result<(), Error>) -> bool {
        matches!(
            r,
            Err(Error::Unavailable {
                cause: UnavailableCause::CircuitOpen,
                ..
            })
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_fails_fast_probes_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(50));
        b.failure(&refused());
        assert!(b.admit().is_ok());
        b.failure(&refused());
        assert_eq!(b.state(), CircuitState::Open);
        let open = b.admit();
        assert!(
            matches!(&open, Err(e) if e.to_string().contains("circuit open after 2 consecutive connection failures (last: refused)")),
            "{open:?}"
        );
        assert!(is_circuit_open(open));
        advance(Duration::from_millis(49)).await;
        assert!(is_circuit_open(b.admit()), "still cooling down");
        advance(Duration::from_millis(1)).await;
        assert!(b.admit().is_ok()); // the probe
        assert!(is_circuit_open(b.admit())); // only one
        b.failure(&refused());
        assert_eq!(b.state(), CircuitState::Open);
        advance(Duration::from_millis(50)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.admit().is_ok());
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_lets_the_next_call_probe() {
        let b = Breaker::new(1, Duration::from_millis(20));
        b.failure(&refused());
        advance(Duration::from_millis(20)).await;
        assert!(b.admit().is_ok()); // the probe; its caller goes away
        assert!(b.admit().is_err());
        b.abandon();
        assert!(b.admit().is_ok()); // a new probe
        b.success();
        b.abandon(); // closed: nothing to give up
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn threshold_zero_never_opens() {
        let b = Breaker::new(0, Duration::from_millis(20));
        for _ in 0..10 {
            b.failure(&refused());
        }
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(b.admit().is_ok());
    }
}
