//! How many audit lines of calls no tenant was found for (UNAUTHENTICATED) a second
//! may take: a flood of them from strangers must not crowd the lines of writes out of
//! the writer's queue. Callers who are known are bounded by their quotas instead.
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lines of unknown callers written per second at most.
pub const ANONYMOUS_LINES_PER_SECOND: u32 = 1_000;

/// A one-second window of lines of unknown callers.
#[derive(Debug)]
pub struct Budget {
    window: Mutex<(Instant, u32)>,
    skipped: AtomicU64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            window: Mutex::new((Instant::now(), 0)),
            skipped: AtomicU64::new(0),
        }
    }
}

impl Budget {
    /// Whether one more line fits at `now`; one that does not is counted.
    pub fn take(&self, now: Instant) -> bool {
        let mut w = self.window.lock();
        if now.saturating_duration_since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        if w.1 < ANONYMOUS_LINES_PER_SECOND {
            w.1 += 1;
            return true;
        }
        self.skipped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Lines of unknown callers not written.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_takes_its_budget_and_the_next_one_a_new_one() {
        let b = Budget::default();
        let t0 = Instant::now();
        for _ in 0..ANONYMOUS_LINES_PER_SECOND {
            assert!(b.take(t0));
        }
        assert!(!b.take(t0 + Duration::from_millis(999)));
        assert_eq!(b.skipped(), 1);
        assert!(b.take(t0 + Duration::from_secs(1)));
    }
}
