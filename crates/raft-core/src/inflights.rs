//! The bounded window of AppendEntries messages in flight to one follower: at most
//! `cap` messages and, on top of that, at most `max_bytes` bytes of entries.

use std::collections::VecDeque;

use crate::types::LogIndex;

/// The last index and the entry bytes of each AppendEntries in flight, oldest first.
/// The leader adds a message as it sends it and frees messages as the follower
/// acknowledges them; the window is full, and the follower paused, at `cap` messages
/// or `max_bytes` bytes.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    /// The most messages in flight (`Config::max_inflight_msgs`). Fixed; the leader
    /// adds a message only while the window is not full, so `sent.len() <= cap`.
    cap: usize,
    /// The byte budget (`Config::max_inflight_bytes`). Fixed; only the message that
    /// fills the budget may take `bytes` beyond it, so `bytes < max_bytes` plus the
    /// size of that one message.
    max_bytes: u64,
    /// The sum of the bytes in `sent`, saturating at `u64::MAX` (so at least their
    /// true sum capped there); 0 whenever `sent` is empty.
    bytes: u64,
    /// `(last index, entry bytes)` per message in flight, oldest first. The last
    /// indexes strictly increase (each message follows the one before), so an
    /// acknowledgement of `index` frees a prefix.
    sent: VecDeque<(LogIndex, u64)>,
}

impl Inflights {
    pub(crate) fn new(cap: usize, max_bytes: u64) -> Self {
        Inflights {
            cap,
            max_bytes,
            bytes: 0,
            sent: VecDeque::with_capacity(cap.min(1024)),
        }
    }

    /// No more messages may go out: the message window or the byte budget is used up.
    pub(crate) fn full(&self) -> bool {
        self.sent.len() >= self.cap || self.bytes >= self.max_bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.sent.len()
    }

    /// The bytes of entries in flight.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The bytes the next message may carry before the budget is used up (at least 1
    /// while the window is not full; the caller still sends one entry if it is larger).
    pub(crate) fn room(&self) -> u64 {
        self.max_bytes.saturating_sub(self.bytes).max(1)
    }

    /// Records a message whose last entry is `last` and whose entries take `bytes`.
    /// Indexes only grow.
    pub(crate) fn add(&mut self, last: LogIndex, bytes: u64) {
        self.sent.push_back((last, bytes));
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// The follower acknowledged everything up to `index`.
    pub(crate) fn free_to(&mut self, index: LogIndex) {
        while self.sent.front().is_some_and(|&(i, _)| i <= index) {
            self.free_first();
        }
    }

    /// Frees the oldest slot (a heartbeat answer shows the follower is alive, so a
    /// lost message must not block the window forever).
    pub(crate) fn free_first(&mut self) {
        if let Some((_, bytes)) = self.sent.pop_front() {
            self.bytes = self.bytes.saturating_sub(bytes);
        }
        if self.sent.is_empty() {
            // Saturation can only have lost bytes upwards; an empty window holds none.
            self.bytes = 0;
        }
    }

    pub(crate) fn reset(&mut self) {
        self.sent.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Inflights;
    use proptest::prelude::*;

    proptest! {
        /// The window equals a naive list filtered by "not yet acknowledged".
        #[test]
        fn window_matches_naive_model(ops in proptest::collection::vec((0u8..3, 0u64..50, 0u64..400), 0..200)) {
            let mut w = Inflights::new(8, 1000);
            let mut naive: Vec<(u64, u64)> = Vec::new();
            let mut next = 1;
            for (op, x, size) in ops {
                match op {
                    0 => if !w.full() {
                        w.add(next, size);
                        naive.push((next, size));
                        next += 1 + x % 3;
                    },
                    1 => {
                        w.free_to(x);
                        naive.retain(|&(i, _)| i > x);
                    }
                    _ => {
                        w.free_first();
                        if !naive.is_empty() {
                            naive.remove(0);
                        }
                    }
                }
                let bytes: u64 = naive.iter().map(|&(_, b)| b).sum();
                prop_assert_eq!(w.len(), naive.len());
                prop_assert_eq!(w.bytes(), bytes);
                prop_assert_eq!(w.full(), naive.len() >= 8 || bytes >= 1000);
                // One message may overshoot the budget, never more.
                prop_assert!(bytes < 1000 + 400);
            }
        }

        /// Sizes near `u64::MAX` saturate instead of wrapping, and freeing the last
        /// message empties the budget.
        #[test]
        fn huge_sizes_saturate(sizes in proptest::collection::vec(any::<u64>(), 1..6)) {
            let mut w = Inflights::new(16, u64::MAX);
            for (i, s) in sizes.iter().enumerate() {
                w.add(i as u64 + 1, *s);
            }
            prop_assert!(w.bytes() >= *sizes.iter().max().unwrap_or(&0));
            w.free_to(sizes.len() as u64);
            prop_assert_eq!(w.bytes(), 0);
            prop_assert!(!w.full());
        }
    }
}
