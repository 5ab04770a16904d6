//! Warnings about what peers send, at a bounded rate.
//!
//! A peer (or anyone holding the cluster token) can send bad input as fast as the
//! network carries it; logging every refusal would turn a flood of frames into a
//! flood of log lines (CPU, disk). [`warn_limited!`](crate::warn_limited) logs the
//! first refusal at a call site and then at most one per [`LogLimiter::INTERVAL`],
//! each line carrying `held_back`: how many were left out since the last one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Lets one event through per [`INTERVAL`](Self::INTERVAL) and counts the others.
///
/// ```
/// use raft_cluster::LogLimiter;
///
/// static LIMIT: LogLimiter = LogLimiter::new();
/// assert_eq!(LIMIT.allow(), Some(0)); // the first one goes through
/// assert_eq!(LIMIT.allow(), None); // the next ones, within a second, are counted
/// assert_eq!(LIMIT.allow(), None);
/// ```
#[derive(Debug)]
pub struct LogLimiter {
    /// Milliseconds since [`epoch`] at which the last event went through, plus one
    /// (0: never).
    last: AtomicU64,
    held: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl LogLimiter {
    /// At most one event per interval goes through.
    pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

    /// A limiter that lets the next event through.
    pub const fn new() -> Self {
        LogLimiter {
            last: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(held_back)` if this event may be logged (with how many were held back
    /// since the last one that was), `None` if it is to be left out.
    pub fn allow(&self) -> Option<u64> {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.allow_at(now.saturating_add(1))
    }

    /// [`allow`](Self::allow) at `now` milliseconds (≥ 1) on the limiter's clock.
    fn allow_at(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= Self::INTERVAL.as_millis() as u64;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.held.swap(0, Ordering::Relaxed));
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// `tracing::warn!` at most once per second per call site, with a `held_back` field
/// counting the warnings left out since the last one logged. For anything a peer
/// can cause as often as it likes: refused messages, frames and handshakes.
///
/// ```
/// let e = "term 18446744073709551615 is over the bound";
/// raft_cluster::warn_limited!(error = %e, "dropping an inbound message");
/// ```
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static LIMIT: $crate::LogLimiter = $crate::LogLimiter::new();
        if let Some(held_back) = LIMIT.allow() {
            $crate::__tracing::warn!(held_back, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_goes_through_and_the_rest_are_counted() {
        let l = LogLimiter::new();
        let ms = LogLimiter::INTERVAL.as_millis() as u64;
        assert_eq!(l.allow_at(1), Some(0));
        for t in [2, 10, ms] {
            assert_eq!(l.allow_at(t), None, "at {t} ms");
        }
        assert_eq!(l.allow_at(ms + 1), Some(3));
        assert_eq!(l.allow_at(ms + 2), None);
        assert_eq!(l.allow_at(5 * ms), Some(1));
    }
}
