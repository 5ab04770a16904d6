//! [`Ready`]: what a node hands its driver after some inputs, and the node's
//! bookkeeping of the exchange (what the driver was last told, what the last Ready
//! handed out), so that `advance` knows what became durable and applied, and the next
//! Ready hands out only what is new.

use std::fmt;

use crate::entry::{Entry, Snapshot};
use crate::message::{Message, SnapshotChunk};
use crate::raft::Raft;
use crate::read_queue::ReadState;
use crate::storage::Storage;
use crate::types::{HardState, LogIndex, SoftState, Term};

/// Everything the driver must do after some inputs, in this order:
///
/// 1. send `messages` (they may leave before anything is persisted);
/// 2. persist `snapshot` (if any), then `entries` (replacing any stored entries from
///    `entries[0].index` on), then `hard_state` (if any);
/// 3. only then send `persisted_messages` (votes and append acknowledgements, which
///    promise durable state); a candidate counts its own vote only then, too (see
///    [`crate::RawNode::on_hard_state_persisted`]);
/// 4. install `snapshot` in the state machine, then apply `committed_entries` in order;
/// 5. serve each of `read_states` once the state machine has applied its index;
/// 6. call [`crate::RawNode::advance`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// The role, leader or term changed.
    pub soft_state: Option<SoftState>,
    /// The hard state changed and must be persisted.
    pub hard_state: Option<HardState>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// A snapshot from the leader, to persist and install. With
    /// [`crate::Config::stream_snapshots`] its `data` is empty: it is the snapshot the
    /// driver staged from [`Ready::snapshot_chunks`] and accepted.
    pub snapshot: Option<Snapshot>,
    /// With [`crate::Config::stream_snapshots`]: chunks of a snapshot from the leader,
    /// in order, for the driver to stage (a chunk at offset 0 starts the staging over).
    /// When the last one (`done`) is staged, the driver lets the state machine check
    /// the snapshot and reports with [`crate::RawNode::snapshot_received`]. Nothing
    /// promises durability here; they may be written after `messages` were sent.
    pub snapshot_chunks: Vec<SnapshotChunk>,
    /// Messages that may be sent at once.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after this Ready's state is persisted.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply to the state machine.
    pub committed_entries: Vec<Entry>,
    /// Linearizable reads that may be served once their index is applied.
    pub read_states: Vec<ReadState>,
}

impl fmt::Display for Ready {
    /// One line: `hs=3/node1/5 ents=2..=4 commit=1..=3 msgs=4+1 reads=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = &self.soft_state {
            parts.push(format!(
                "{} t{} leader={:?}{}",
                s.role,
                s.term,
                s.leader.as_ref().map(|l| l.as_str()),
                if s.quiesced { " quiesced" } else { "" }
            ));
        }
        if let Some(h) = &self.hard_state {
            parts.push(format!(
                "hs=t{}/vote={:?}/commit={}",
                h.term,
                h.vote.as_ref().map(|v| v.as_str()),
                h.commit
            ));
        }
        if let Some(s) = &self.snapshot {
            parts.push(format!("snap={}/{}", s.meta.index, s.meta.term));
        }
        if let (Some(a), Some(b)) = (self.entries.first(), self.entries.last()) {
            parts.push(format!("ents={}..={}", a.index, b.index));
        }
        if let (Some(a), Some(b)) = (self.committed_entries.first(), self.committed_entries.last()) {
            parts.push(format!("apply={}..={}", a.index, b.index));
        }
        if !self.messages.is_empty() || !self.persisted_messages.is_empty() {
            parts.push(format!(
                "msgs={}+{}",
                self.messages.len(),
                self.persisted_messages.len()
            ));
        }
        if !self.read_states.is_empty() {
            parts.push(format!("reads={}", self.read_states.len()));
        }
        f.write_str(&parts.join(" "))
    }
}

/// What a Ready handed out, so `advance` knows what was persisted and applied.
#[derive(Debug, Default)]
struct Handed {
    last_entry: Option<(LogIndex, Term)>,
    hard_state: Option<HardState>,
    snapshot: Option<LogIndex>,
    last_applied: Option<LogIndex>,
}

/// The node's side of the Ready/advance exchange.
#[derive(Debug)]
pub(crate) struct Handout {
    /// The soft state the driver was last told (a Ready reports it when it differs).
    prev_soft: SoftState,
    /// The hard state the driver was last told to persist.
    prev_hard: HardState,
    /// What the last Ready handed out; emptied by `advance` and `advance_async`.
    handed: Handed,
    /// At most about this many bytes of committed entries per Ready.
    max_apply_bytes: u64,
    /// At most this many committed entries handed out and not reported applied.
    pub(crate) max_unapplied: u64,
}

impl Handout {
    /// A node's first exchange: the driver knows what `raft` restarted from.
    pub(crate) fn new<S: Storage>(raft: &Raft<S>) -> Self {
        Handout {
            prev_soft: raft.soft_state(),
            prev_hard: raft.hard_state(),
            handed: Handed::default(),
            max_apply_bytes: 64 << 20,
            max_unapplied: u64::MAX,
        }
    }

    /// Whether [`Handout::ready`] has anything to hand out.
    pub(crate) fn has_ready<S: Storage>(&self, r: &Raft<S>) -> bool {
        r.has_pending_flush()
            || !r.msgs.is_empty()
            || !r.msgs_after_persist.is_empty()
            || !r.log.unhanded_entries().is_empty()
            || r.log.unhanded_snapshot().is_some()
            || r.log.has_next_committed(self.max_unapplied)
            || r.reads.has_ready()
            || !r.snapshot_chunks_out.is_empty()
            || r.soft_state() != self.prev_soft
            || r.hard_state() != self.prev_hard
    }

    /// Collects the work for the driver, after the work deferred to the Ready boundary.
    pub(crate) fn ready<S: Storage>(&mut self, r: &mut Raft<S>) -> Ready {
        r.flush();
        let soft = r.soft_state();
        let hard = r.hard_state();
        let entries = r.log.unhanded_entries().to_vec();
        let snapshot = r.log.unhanded_snapshot().cloned();
        r.log.hand_out();
        let committed_entries = r.log.next_committed_entries(self.max_apply_bytes, self.max_unapplied);
        self.handed = Handed {
            last_entry: entries.last().map(|e| (e.index, e.term)),
            hard_state: (hard != self.prev_hard).then(|| hard.clone()),
            snapshot: snapshot.as_ref().map(|s| s.meta.index),
            last_applied: committed_entries.last().map(|e| e.index),
        };
        let ready = Ready {
            soft_state: (soft != self.prev_soft).then(|| soft.clone()),
            hard_state: (hard != self.prev_hard).then(|| hard.clone()),
            entries,
            snapshot,
            messages: std::mem::take(&mut r.msgs),
            persisted_messages: std::mem::take(&mut r.msgs_after_persist),
            committed_entries,
            read_states: r.reads.take_ready(),
            snapshot_chunks: std::mem::take(&mut r.snapshot_chunks_out),
        };
        self.prev_soft = soft;
        self.prev_hard = hard;
        ready
    }

    /// The last Ready is carried out: its state persisted, its entries applied.
    pub(crate) fn advance<S: Storage>(&mut self, r: &mut Raft<S>) {
        let handed = std::mem::take(&mut self.handed);
        if let Some(index) = handed.snapshot {
            r.log.stable_snapshot_to(index);
        }
        if let Some((index, term)) = handed.last_entry {
            r.on_persisted(index, term);
        }
        if let Some(index) = handed.last_applied {
            r.log.applied_to(index);
        }
        if let Some(hs) = handed.hard_state {
            r.on_vote_persisted(hs.term, hs.vote.as_ref());
        }
    }

    /// The last Ready is acknowledged, its completions to be reported one by one.
    pub(crate) fn advance_async(&mut self) {
        self.handed = Handed::default();
    }
}
