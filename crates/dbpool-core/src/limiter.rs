//! Rate-limited logging and echo clipping: what keeps a hostile or broken peer from
//! turning the daemon's log or error headers into an unbounded sink.
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Lets a repeated event be logged once, then at most once per `interval`, and counts
/// the occurrences it held back so the next logged line can say how many there were.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter that lets one event through per `interval`.
    pub const fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            state: Mutex::new(LimiterState {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// Records an event now: `Some(suppressed)` when it should be logged (with the count
    /// of events held back since the last logged one), `None` when it is held back.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    /// [`check`](Self::check) at a given instant (tests drive the clock).
    pub fn check_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock();
        let due = s
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            s.last = Some(now);
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }

    /// Forgets the history: the next event is logged (e.g. after the condition cleared).
    pub fn reset(&self) {
        *self.state.lock() = LimiterState::default();
    }
}

/// Characters of a request string an error message may echo.
pub const ECHO_CHARS: usize = 64;

/// A request string shortened for an error message: at most [`ECHO_CHARS`] characters,
/// with `…` when cut, so no error header can outgrow a client's metadata limit.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(ECHO_CHARS) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_per_interval_with_the_suppressed_count() {
        let l = LogLimiter::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(l.check_at(t0), Some(0));
        // 400 events a second for 10 s: two more lines, each counting what it held back.
        let mut logged = vec![];
        for i in 1..=4000u64 {
            if let Some(n) = l.check_at(t0 + Duration::from_micros(i * 2500)) {
                logged.push(n);
            }
        }
        assert_eq!(logged, vec![1999, 1999]);
        l.reset();
        assert_eq!(l.check_at(t0 + Duration::from_secs(10)), Some(0));
    }

    #[test]
    fn clip_cuts_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(10_000);
        let c = clip(&long);
        assert_eq!(c.chars().count(), ECHO_CHARS + 1);
        assert!(c.ends_with('…'));
        assert_eq!(clip(&"a".repeat(ECHO_CHARS)), "a".repeat(ECHO_CHARS));
    }
}
