//! Reconnect pacing shared by the transports: exponential backoff with jitter.

use std::time::{Duration, Instant};

/// When to try a peer again after failures: `initial * 2^(failures-1)`, capped at
/// `max`, times a random factor in [0.5, 1) so peers do not retry in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// A backoff with no failures yet.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            failures: 0,
            retry_at: None,
        }
    }

    /// Whether an attempt may be made now.
    pub fn ready(&self) -> bool {
        self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// An attempt failed: wait longer before the next.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let exp = self
            .initial
            .saturating_mul(1u32 << self.failures.min(16).saturating_sub(1));
        let delay = exp.min(self.max).mul_f64(0.5 + jitter() / 2.0);
        self.retry_at = Some(Instant::now() + delay);
    }

    /// An attempt succeeded: the next failure starts from `initial` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }
}

/// A number in [0, 1) that differs between calls and processes.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_reset_on_success() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(40));
        assert!(b.ready());
        b.failed();
        assert!(!b.ready());
        for _ in 0..10 {
            b.failed();
        }
        let wait = b.retry_at.unwrap() - Instant::now();
        assert!(wait <= Duration::from_millis(40), "{wait:?}");
        b.succeeded();
        assert!(b.ready() && b.failures() == 0);
    }
}
