//! Keeps the receive order of one connection's messages when they reach the node.
//!
//! jsonrpsee runs every WebSocket message of a connection in a task of its own
//! (`tokio::spawn` per frame, in `jsonrpsee-server`'s `ws::background_task`), so two
//! batches a peer wrote one after the other can reach our method handlers in either
//! order: making the methods sync, or the calls notifications, does not help, because
//! the reordering happens before the handler runs. Only the calls of one batch run one
//! after the other. So the client numbers its calls per connection (`"seq"`: 0, 1,
//! 2, ...) and this sequencer hands them to the node in that order: a call that
//! arrives early waits here until the ones before it have arrived (or were refused:
//! every numbered call advances the sequence, delivered or not).
//!
//! It never stalls and never grows without bound: a gap older than [`GAP_WAIT`] (a
//! call lost to a frame the server refused whole, say) or more than [`MAX_PENDING`]
//! waiting calls releases what waits, in order, and skips the gap; Raft tolerates the
//! loss as it tolerates any dropped message. At most [`MAX_CONNECTIONS`] connections
//! are tracked (the oldest is forgotten first; a peer keeps one connection at a time).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft_core::Message;

/// How long an out-of-order call waits for the calls before it.
pub(crate) const GAP_WAIT: Duration = Duration::from_millis(500);
/// The most calls of one connection waiting for an earlier one.
pub(crate) const MAX_PENDING: usize = 4096;
/// The most connections whose sequence is tracked.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// One connection's position in its sequence and what arrived ahead of it.
#[derive(Default)]
struct Stream {
    next: u64,
    /// Calls after `next`: `None` for one that was refused (it only advances).
    pending: BTreeMap<u64, Option<Message>>,
    /// When the oldest pending call arrived.
    waiting_since: Option<Instant>,
}

impl Stream {
    /// Takes call `seq` and returns what may go to the node now, in order (`now` is
    /// asked only when something waits).
    fn submit(&mut self, seq: u64, message: Option<Message>, now: impl Fn() -> Instant) -> Vec<Message> {
        let mut ready = Vec::new();
        if seq == self.next && self.pending.is_empty() {
            // In order, nothing waiting: the common case costs no map.
            self.next = self.next.saturating_add(1);
            ready.extend(message);
            return ready;
        }
        if seq < self.next {
            // Already skipped past (or a duplicate number): late is better than lost.
            ready.extend(message);
            return ready;
        }
        self.pending.insert(seq, message);
        let now = now();
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        self.drain(&mut ready);
        let stale = self
            .waiting_since
            .is_some_and(|t| now.saturating_duration_since(t) >= GAP_WAIT);
        if !self.pending.is_empty() && (stale || self.pending.len() > MAX_PENDING) {
            tracing::debug!(
                expected = self.next,
                waiting = self.pending.len(),
                "a numbered call never came; skipping it"
            );
            if let Some((&first, _)) = self.pending.first_key_value() {
                self.next = first;
            }
            self.drain(&mut ready);
        }
        ready
    }

    /// Moves the consecutive run at `next` to `ready`.
    fn drain(&mut self, ready: &mut Vec<Message>) {
        while let Some(m) = self.pending.remove(&self.next) {
            ready.extend(m);
            self.next = self.next.saturating_add(1);
        }
        if self.pending.is_empty() {
            self.waiting_since = None;
        }
    }
}

/// The sequences of the server's connections, by jsonrpsee connection id.
#[derive(Default)]
pub(crate) struct Sequencer {
    streams: Mutex<BTreeMap<usize, Stream>>,
}

impl Sequencer {
    /// Takes call `seq` of connection `conn` (`None` if it was refused) and passes
    /// every message that is now in order to `deliver`, under the lock, so that two
    /// handlers never interleave their deliveries.
    pub(crate) fn submit(&self, conn: usize, seq: u64, message: Option<Message>, mut deliver: impl FnMut(Message)) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if !streams.contains_key(&conn) && streams.len() >= MAX_CONNECTIONS {
            // Connection ids only grow: the smallest is the oldest, most likely closed.
            streams.pop_first();
        }
        let ready = streams.entry(conn).or_default().submit(seq, message, Instant::now);
        for m in ready {
            deliver(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{MessageBody, NodeId};

    fn msg(term: u64) -> Message {
        Message {
            group: 0,
            from: NodeId::new("a"),
            to: NodeId::new("b"),
            term,
            body: MessageBody::TimeoutNow,
        }
    }

    fn terms(ms: Vec<Message>) -> Vec<u64> {
        ms.into_iter().map(|m| m.term).collect()
    }

    #[test]
    fn calls_that_overtake_wait_for_the_ones_before_them() {
        let mut s = Stream::default();
        let t = Instant::now();
        assert_eq!(terms(s.submit(1, Some(msg(1)), || t)), Vec::<u64>::new());
        assert_eq!(terms(s.submit(2, Some(msg(2)), || t)), Vec::<u64>::new());
        assert_eq!(terms(s.submit(0, Some(msg(0)), || t)), vec![0, 1, 2]);
        assert_eq!(terms(s.submit(3, Some(msg(3)), || t)), vec![3]);
    }

    #[test]
    fn a_refused_call_still_advances_the_sequence() {
        let mut s = Stream::default();
        let t = Instant::now();
        assert!(s.submit(1, Some(msg(1)), || t).is_empty());
        assert_eq!(terms(s.submit(0, None, || t)), vec![1]);
    }

    #[test]
    fn a_gap_that_never_fills_is_skipped_after_a_while() {
        let mut s = Stream::default();
        let t = Instant::now();
        assert!(s.submit(1, Some(msg(1)), || t).is_empty());
        assert_eq!(terms(s.submit(2, Some(msg(2)), || t + GAP_WAIT)), vec![1, 2]);
        // The lost call turning up late still reaches the node.
        assert_eq!(terms(s.submit(0, Some(msg(0)), || t + GAP_WAIT)), vec![0]);
    }

    #[test]
    fn waiting_calls_are_bounded() {
        let mut s = Stream::default();
        let t = Instant::now();
        let mut out = Vec::new();
        for i in 1..=(MAX_PENDING as u64 + 1) {
            out.extend(s.submit(i, Some(msg(i)), || t));
        }
        assert_eq!(terms(out), (1..=MAX_PENDING as u64 + 1).collect::<Vec<_>>());
        assert!(s.pending.is_empty());
    }

    #[test]
    fn the_oldest_connection_is_forgotten_first() {
        let q = Sequencer::default();
        for conn in 0..=MAX_CONNECTIONS {
            q.submit(conn, 1, Some(msg(1)), |_| {});
        }
        let streams = q.streams.lock().unwrap();
        assert_eq!(streams.len(), MAX_CONNECTIONS);
        assert!(!streams.contains_key(&0));
    }
}
