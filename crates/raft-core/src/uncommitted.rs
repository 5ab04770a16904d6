//! The leader's bytes of proposed commands appended in its term and not yet
//! committed, capped by `Config::max_uncommitted_bytes` (each leader's
//! `LeaderState` starts from nothing).

use std::collections::VecDeque;

use crate::error::{Error, Result};
use crate::types::LogIndex;

/// The accepted proposals a leader has not committed yet, by size.
#[derive(Clone, Debug, Default)]
pub(crate) struct Uncommitted {
    /// The sum of the sizes in `batches` (saturating).
    bytes: u64,
    /// The last index and the bytes of each accepted proposal (or batch), oldest first.
    batches: VecDeque<(LogIndex, u64)>,
}

impl Uncommitted {
    /// Whether a proposal of `size` bytes may be appended under `limit`. One is always
    /// admitted when nothing is uncommitted, so a proposal larger than the limit is
    /// not refused forever.
    pub(crate) fn admit(&self, size: u64, limit: u64) -> Result<()> {
        if self.bytes > 0 && self.bytes.saturating_add(size) > limit {
            return Err(Error::Backpressure {
                uncommitted: self.bytes,
                size,
                limit,
            });
        }
        Ok(())
    }

    /// A proposal of `size` bytes was appended, its last entry at `last`.
    pub(crate) fn add(&mut self, last: LogIndex, size: u64) {
        self.batches.push_back((last, size));
        self.bytes = self.bytes.saturating_add(size);
    }

    /// Everything up to `index` is committed.
    pub(crate) fn committed_to(&mut self, index: LogIndex) {
        while let Some(&(last, size)) = self.batches.front() {
            if last > index {
                break;
            }
            self.batches.pop_front();
            self.bytes = self.bytes.saturating_sub(size);
        }
        if self.batches.is_empty() {
            self.bytes = 0;
        }
    }

    /// The bytes uncommitted now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::Uncommitted;
    use crate::error::Error;

    #[test]
    fn admits_until_the_limit_then_frees_on_commit() {
        let mut u = Uncommitted::default();
        // Nothing uncommitted: even a proposal over the limit goes in.
        assert!(u.admit(5000, 1000).is_ok());
        u.add(1, 400);
        u.add(2, 400);
        assert!(u.admit(200, 1000).is_ok());
        assert!(matches!(
            u.admit(201, 1000),
            Err(Error::Backpressure {
                uncommitted: 800,
                size: 201,
                limit: 1000
            })
        ));
        u.committed_to(1);
        assert_eq!(u.bytes(), 400);
        assert!(u.admit(600, 1000).is_ok());
        u.committed_to(10);
        assert_eq!(u.bytes(), 0);
        u.add(11, u64::MAX);
        u.add(12, u64::MAX);
        assert_eq!(u.bytes(), u64::MAX);
        assert!(u.admit(1, u64::MAX - 1).is_err());
        // Leadership changed: a new leader's state starts from nothing.
        let u = Uncommitted::default();
        assert_eq!(u.bytes(), 0);
        assert!(u.admit(u64::MAX, 1).is_ok());
    }
}
