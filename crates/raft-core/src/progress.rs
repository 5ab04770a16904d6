//! What a leader knows about one follower's log, and the flow control on it.

use std::collections::BTreeMap;
use std::fmt;

use crate::inflights::Inflights;
use crate::types::{LogIndex, NodeId};

/// The leader's progress for every member, itself included: its keys are always
/// exactly the members of the configuration in effect (`Membership::members`).
pub(crate) type ProgressMap = BTreeMap<NodeId, Progress>;

/// How the leader replicates to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the follower's log matches is unknown: one message at a time, backing up
    /// on each rejection.
    Probe,
    /// The follower is known to match: stream entries optimistically, bounded by the
    /// in-flight window.
    Replicate,
    /// The follower needs a snapshot at `pending` before replication can continue.
    Snapshot {
        /// The snapshot's index.
        pending: LogIndex,
    },
}

/// The flow-control window per follower, the same for all of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// At most this many AppendEntries in flight (`Config::max_inflight_msgs`).
    pub(crate) msgs: usize,
    /// At most this many bytes of entries in flight (`Config::max_inflight_bytes`);
    /// the message that reaches it may overshoot it.
    pub(crate) bytes: u64,
}

impl Window {
    pub(crate) fn of(cfg: &crate::config::Config) -> Self {
        Window {
            msgs: cfg.max_inflight_msgs,
            bytes: cfg.max_inflight_bytes,
        }
    }
}

/// The leader's view of one follower (or of itself), made fresh when it takes office
/// or the member joins. The state machine of `state` lives in the `become_*` methods;
/// the other fields say what holds in each state.
///
/// Invariant, in every state: `match_index < next_index`.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// The highest index known to match the leader's log on this follower: the
    /// follower acknowledged holding it durably (for the leader itself: the last index
    /// it persisted). 0 until the first acknowledgement of this term; it never
    /// decreases while the leader leads, which is why commitment may count on it.
    pub(crate) match_index: LogIndex,
    /// The index of the next entry to send. In Probe, `next_index - 1` is the index
    /// the next AppendEntries probes (its `prev_log_index`); in Replicate, entries in
    /// `(match_index, next_index)` are in flight; in Snapshot it is not used until the
    /// follower leaves that state (`become_probe` sets it again).
    pub(crate) next_index: LogIndex,
    /// How the leader replicates to the follower now.
    pub(crate) state: ProgressState,
    /// In Probe: an AppendEntries is out and no other goes until it, or a heartbeat,
    /// is answered. Cleared by every state change; not used in Replicate or Snapshot.
    pub(crate) probe_sent: bool,
    /// In Replicate: the AppendEntries in flight, bounded by the [`Window`]; the
    /// follower is paused while it is full. Its last indexes lie in
    /// `(match_index, next_index)`. Emptied by every state change.
    pub(crate) inflights: Inflights,
    /// The follower was heard from since the last check-quorum round (each
    /// `election_tick` ticks). Always true for the leader itself.
    pub(crate) recent_active: bool,
    /// The highest heartbeat round the follower echoed (for the leader itself: the
    /// last round it started). Never decreases; a read waiting for round `r` is
    /// confirmed once a quorum's `read_round` is at least `r`.
    pub(crate) read_round: u64,
    /// In Snapshot: leader ticks since the last chunk went out; at two election
    /// timeouts the chunk is sent again (it or its answer was lost).
    pub(crate) snapshot_ticks: u64,
    /// In Snapshot: the bytes of the pending snapshot the follower confirmed receiving,
    /// where the next chunk starts (clamped to the snapshot's length when read).
    /// Reset to 0 when a snapshot transfer starts.
    pub(crate) snapshot_offset: u64,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex, window: Window) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(window.msgs, window.bytes),
            recent_active: false,
            read_round: 0,
            snapshot_ticks: 0,
            snapshot_offset: 0,
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.next_index = match self.state {
            ProgressState::Snapshot { pending } => (self.match_index + 1).max(pending + 1),
            _ => self.match_index + 1,
        };
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.next_index = self.match_index + 1;
        self.state = ProgressState::Replicate;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub(crate) fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot { pending: index };
        self.snapshot_ticks = 0;
        self.snapshot_offset = 0;
        self.inflights.reset();
    }

    /// The follower matches up to `index`. Returns whether that is news.
    pub(crate) fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// A message with entries up to `last`, of `bytes` bytes, went out.
    pub(crate) fn sent_entries(&mut self, last: Option<LogIndex>, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last {
                    self.next_index = last + 1;
                    self.inflights.add(last, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// The follower rejected an append at `rejected`; `match_hint` is the highest index
    /// that may still match. Returns false for a stale rejection.
    pub(crate) fn maybe_decr_to(&mut self, rejected: LogIndex, match_hint: LogIndex) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.match_index {
                    return false;
                }
                self.next_index = self.match_index + 1;
                true
            }
            ProgressState::Probe => {
                if self.next_index == 0 || self.next_index - 1 != rejected {
                    return false;
                }
                let next = rejected.min(match_hint.saturating_add(1)).max(self.match_index + 1);
                if next == self.next_index {
                    // Rejected at what the follower acknowledged as matching: its log
                    // disagrees with its own ack (a forged commit or snapshot made it
                    // commit entries the leader does not have). Probing again at once
                    // would loop without end; the next heartbeat response retries.
                    return false;
                }
                self.next_index = next;
                self.probe_sent = false;
                true
            }
            ProgressState::Snapshot { .. } => false,
        }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            ProgressState::Probe => "probe".to_string(),
            ProgressState::Replicate => "replicate".to_string(),
            ProgressState::Snapshot { pending } => format!("snapshot@{pending}"),
        };
        write!(
            f,
            "match={} next={} {}{} inflight={}/{}B",
            self.match_index,
            self.next_index,
            state,
            if self.probe_sent { " paused" } else { "" },
            self.inflights.len(),
            self.inflights.bytes()
        )
    }
}
