//! The configuration in effect and the quorum questions asked of it: who may vote,
//! how an election stands, and (on the leader, over its [`ProgressMap`]) which index
//! and which read round a quorum of every half has reached.

use std::collections::{BTreeMap, BTreeSet};

use crate::progress::{Progress, ProgressMap};
use crate::quorum::{joint_vote, majority_index, majority_vote, VoteResult};
use crate::types::{LogIndex, Membership, NodeId};

/// The membership in effect and the votes of the current election.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tracker {
    /// The configuration in effect in every role: the latest one in the log (see
    /// `Raft::refresh_membership`), or the snapshot's.
    pub(crate) membership: Membership,
    /// The answers of the current (pre-)election, one per voter that answered (the
    /// first answer counts). Cleared when an election starts or the role changes.
    pub(crate) votes: BTreeMap<NodeId, bool>,
}

impl Tracker {
    pub(crate) fn new(membership: Membership) -> Self {
        Tracker {
            membership,
            ..Tracker::default()
        }
    }

    fn halves(&self) -> [&BTreeSet<NodeId>; 2] {
        [&self.membership.voters, &self.membership.voters_outgoing]
    }

    /// §5.3/§5.4: the highest index replicated on a quorum of every half.
    pub(crate) fn committed_index(&self, progress: &ProgressMap) -> LogIndex {
        self.quorum_min(progress, |p| p.match_index)
    }

    /// The highest read round acknowledged by a quorum of every half.
    pub(crate) fn confirmed_read_round(&self, progress: &ProgressMap) -> u64 {
        self.quorum_min(progress, |p| p.read_round)
    }

    fn quorum_min(&self, progress: &ProgressMap, f: impl Fn(&Progress) -> u64) -> u64 {
        let value = |id: &NodeId| progress.get(id).map_or(0, &f);
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

    /// Check-quorum: a quorum of every half has been heard from recently.
    pub(crate) fn quorum_active(&self, progress: &ProgressMap, me: &NodeId) -> bool {
        let active: BTreeMap<NodeId, bool> = progress
            .iter()
            .map(|(id, p)| (id.clone(), p.recent_active || id == me))
            .collect();
        let [a, b] = self.halves();
        joint_vote(majority_vote(a, &active), majority_vote(b, &active)) == VoteResult::Won
    }
}
