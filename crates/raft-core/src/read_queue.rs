//! The state of ReadIndex reads (see `read_only.rs` for the rules): the reads waiting
//! for a heartbeat round, and the reads released at an index.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::types::{LogIndex, NodeId};

/// A read that may be served once the state machine has applied `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The context the caller passed to [`crate::RawNode::read_index`].
    pub context: Bytes,
    /// Serve the read after applying at least this index.
    pub index: LogIndex,
}

#[derive(Debug)]
pub(crate) struct PendingRead {
    pub(crate) context: Bytes,
    /// The follower that forwarded it, or `None` for a local read.
    pub(crate) from: Option<NodeId>,
    pub(crate) index: LogIndex,
    pub(crate) round: u64,
}

/// The leader's queue of reads waiting for confirmation, and the reads ready to serve.
#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// The last heartbeat round sent. Rounds only grow.
    pub(crate) round: u64,
    /// A read waits for a round that has not been sent yet.
    pub(crate) round_pending: bool,
    /// When (in ticks) each recent round was sent, oldest first.
    pub(crate) sent_at: VecDeque<(u64, u64)>,
    pub(crate) queue: VecDeque<PendingRead>,
    /// Reads that arrived before the leader committed an entry of its term (it does
    /// not know the commit index until then).
    pub(crate) waiting_commit: Vec<(Bytes, Option<NodeId>)>,
    pub(crate) ready: Vec<ReadState>,
}

impl ReadOnly {
    pub(crate) fn round_pending(&self) -> bool {
        self.round_pending
    }

    pub(crate) fn take_round_pending(&mut self) -> bool {
        std::mem::take(&mut self.round_pending)
    }

    /// Starts a new round at tick `now`; returns its number.
    pub(crate) fn next_round(&mut self, now: u64, keep: usize) -> u64 {
        self.round += 1;
        self.round_pending = false;
        self.sent_at.push_back((self.round, now));
        while self.sent_at.len() > keep {
            self.sent_at.pop_front();
        }
        self.round
    }

    /// When round `round` was sent, if it is still remembered.
    pub(crate) fn sent_tick(&self, round: u64) -> Option<u64> {
        self.sent_at.iter().find(|(r, _)| *r == round).map(|(_, t)| *t)
    }

    /// Forgets when the recent rounds were sent, so that no lease counts on them
    /// (quiescence: a quiesced node's ticks do not count time).
    pub(crate) fn forget_round_times(&mut self) {
        self.sent_at.clear();
    }

    pub(crate) fn push_ready(&mut self, context: Bytes, index: LogIndex) {
        self.ready.push(ReadState { context, index });
    }

    pub(crate) fn take_ready(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.ready)
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Drops pending reads on a role change (their callers time out and retry);
    /// reads already released stay deliverable.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.waiting_commit.clear();
        self.round_pending = false;
        self.sent_at.clear();
    }
}
