//! The bounded window of AppendEntries messages in flight to one follower.

use std::collections::VecDeque;

use crate::types::LogIndex;

/// The last index of each AppendEntries in flight, oldest first, at most `cap`.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    cap: usize,
    sent: VecDeque<LogIndex>,
}

impl Inflights {
    pub(crate) fn new(cap: usize) -> Self {
        Inflights {
            cap,
            sent: VecDeque::with_capacity(cap),
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.sent.len() >= self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.sent.len()
    }

    /// Records a message whose last entry is `last`. Indexes only grow.
    pub(crate) fn add(&mut self, last: LogIndex) {
        self.sent.push_back(last);
    }

    /// The follower acknowledged everything up to `index`.
    pub(crate) fn free_to(&mut self, index: LogIndex) {
        while self.sent.front().is_some_and(|&i| i <= index) {
            self.sent.pop_front();
        }
    }

    /// Frees the oldest slot (a heartbeat answer shows the follower is alive, so a
    /// lost message must not block the window forever).
    pub(crate) fn free_first(&mut self) {
        self.sent.pop_front();
    }

    pub(crate) fn reset(&mut self) {
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Inflights;
    use proptest::prelude::*;

    proptest! {
        /// The window equals a naive list filtered by "not yet acknowledged".
        #[test]
        fn window_matches_naive_model(ops in proptest::collection::vec((any::<bool>(), 0u64..50), 0..200)) {
            let mut w = Inflights::new(8);
            let mut naive: Vec<u64> = Vec::new();
            let mut next = 1;
            for (is_add, x) in ops {
                if is_add {
                    if !w.full() { w.add(next); naive.push(next); next += 1 + x % 3; }
                } else {
                    w.free_to(x);
                    naive.retain(|&i| i > x);
                }
                prop_assert_eq!(w.len(), naive.len());
                prop_assert_eq!(w.full(), naive.len() >= 8);
            }
        }
    }
}
