//! What a leader knows about each follower's log, and the flow control on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::inflights::Inflights;
use crate::quorum::{joint_vote, majority_index, majority_vote, VoteResult};
use crate::types::{LogIndex, Membership, NodeId};

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

/// The flow-control window per follower: at most `msgs` AppendEntries and `bytes`
/// bytes of entries in flight (`Config::max_inflight_msgs`, `max_inflight_bytes`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) msgs: usize,
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

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) match_index: LogIndex,
    pub(crate) next_index: LogIndex,
    pub(crate) state: ProgressState,
    /// In Probe: a message is out and we wait for its answer.
    pub(crate) probe_sent: bool,
    pub(crate) inflights: Inflights,
    /// The follower answered since the last check-quorum round.
    pub(crate) recent_active: bool,
    /// The highest read round the follower acknowledged.
    pub(crate) read_round: u64,
    /// Leader ticks spent waiting in the Snapshot state (a lost chunk is resent).
    pub(crate) snapshot_ticks: u64,
    /// Bytes of the pending snapshot the follower confirmed receiving.
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

/// The membership, the leader's progress per member and the votes of an election.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tracker {
    pub(crate) membership: Membership,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) votes: BTreeMap<NodeId, bool>,
}

impl Tracker {
    pub(crate) fn new(membership: Membership) -> Self {
        Tracker {
            membership,
            ..Tracker::default()
        }
    }

    /// Resets every member's progress (a new leader).
    pub(crate) fn reset_progress(&mut self, next_index: LogIndex, window: Window) {
        self.progress = self
            .membership
            .members()
            .into_iter()
            .map(|id| (id, Progress::new(next_index, window)))
            .collect();
    }

    fn halves(&self) -> [&BTreeSet<NodeId>; 2] {
        [&self.membership.voters, &self.membership.voters_outgoing]
    }

    /// §5.3/§5.4: the highest index replicated on a quorum of every half.
    pub(crate) fn committed_index(&self) -> LogIndex {
        self.quorum_min(|p| p.match_index)
    }

    /// The highest read round acknowledged by a quorum of every half.
    pub(crate) fn confirmed_read_round(&self) -> u64 {
        self.quorum_min(|p| p.read_round)
    }

    fn quorum_min(&self, f: impl Fn(&Progress) -> u64) -> u64 {
        let value = |id: &NodeId| self.progress.get(id).map_or(0, &f);
        let [a, b] = self.halves();
        let i = majority_index(a, value).min(majority_index(b, value));
        if i == u64::MAX {
            0
        } else {
            i
        }
    }

    pub(crate) fn record_vote(&mut self, id: NodeId, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    /// The election result; learners never count (unless a planted bug says so).
    pub(crate) fn tally(&self, count_learners: bool) -> VoteResult {
        let [a, b] = self.halves();
        if count_learners {
            let with_learners: BTreeSet<NodeId> = a.union(&self.membership.learners).cloned().collect();
            return joint_vote(
                majority_vote(&with_learners, &self.votes),
                majority_vote(b, &self.votes),
            );
        }
        joint_vote(majority_vote(a, &self.votes), majority_vote(b, &self.votes))
    }

    /// Adopts a new configuration: new members get fresh progress, removed ones lose it.
    pub(crate) fn set_membership(&mut self, membership: Membership, next_index: LogIndex, window: Window) {
        let members = membership.members();
        self.progress.retain(|id, _| members.contains(id));
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next_index, window));
        }
        self.membership = membership;
    }

    /// Check-quorum: a quorum of every half has been heard from recently.
    pub(crate) fn quorum_active(&self, me: &NodeId) -> bool {
        let active: BTreeMap<NodeId, bool> = self
            .progress
            .iter()
            .map(|(id, p)| (id.clone(), p.recent_active || id == me))
            .collect();
        let [a, b] = self.halves();
        joint_vote(majority_vote(a, &active), majority_vote(b, &active)) == VoteResult::Won
    }
}
