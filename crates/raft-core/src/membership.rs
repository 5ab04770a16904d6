//! Membership changes by joint consensus (§6 of the paper, dissertation §4.3): the
//! requested changes, their validation, and the history of configuration entries in
//! the log (a configuration takes effect when appended, so truncating the log can
//! revert it).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{LogIndex, Membership, NodeId};

/// One requested change to the cluster's membership.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a voter (a current learner is promoted).
    AddVoter(NodeId),
    /// Add a non-voting learner, which receives the log but never counts for quorums.
    AddLearner(NodeId),
    /// Promote a learner to voter.
    PromoteLearner(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
}

impl fmt::Display for MembershipChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipChange::AddVoter(id) => write!(f, "add-voter {id}"),
            MembershipChange::AddLearner(id) => write!(f, "add-learner {id}"),
            MembershipChange::PromoteLearner(id) => write!(f, "promote {id}"),
            MembershipChange::Remove(id) => write!(f, "remove {id}"),
        }
    }
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Another change is still in flight (not yet committed, or a joint configuration
    /// not yet left): one change at a time.
    #[error("a membership change is already in progress (configuration at index {index})")]
    ChangeInProgress {
        /// The index of the configuration entry in flight.
        index: LogIndex,
    },
    /// The change would leave no voter.
    #[error("the change would remove the last voter")]
    RemovesLastVoter,
    /// The node is not a member.
    #[error("{0} is not a member")]
    UnknownNode(NodeId),
    /// The node is a voter already.
    #[error("{0} is already a voter")]
    AlreadyVoter(NodeId),
    /// The node is a learner already.
    #[error("{0} is already a learner")]
    AlreadyLearner(NodeId),
    /// Only learners can be promoted.
    #[error("{0} is not a learner")]
    NotALearner(NodeId),
    /// No change was requested.
    #[error("no change requested")]
    Empty,
}

/// Computes the configuration a batch of changes leads to from `current` (which must
/// not be joint). Returns the target voters and learners as a simple configuration.
pub(crate) fn apply_changes(current: &Membership, changes: &[MembershipChange]) -> Result<Membership, MembershipError> {
    if changes.is_empty() {
        return Err(MembershipError::Empty);
    }
    let mut next = Membership {
        voters: current.voters.clone(),
        voters_outgoing: Default::default(),
        learners: current.learners.clone(),
    };
    for c in changes {
        match c {
            MembershipChange::AddVoter(id) => {
                if next.voters.contains(id) {
                    return Err(MembershipError::AlreadyVoter(id.clone()));
                }
                next.learners.remove(id);
                next.voters.insert(id.clone());
            }
            MembershipChange::AddLearner(id) => {
                if next.voters.contains(id) {
                    return Err(MembershipError::AlreadyVoter(id.clone()));
                }
                if !next.learners.insert(id.clone()) {
                    return Err(MembershipError::AlreadyLearner(id.clone()));
                }
            }
            MembershipChange::PromoteLearner(id) => {
                if !next.learners.remove(id) {
                    return Err(MembershipError::NotALearner(id.clone()));
                }
                next.voters.insert(id.clone());
            }
            MembershipChange::Remove(id) => {
                if !next.voters.remove(id) && !next.learners.remove(id) {
                    return Err(MembershipError::UnknownNode(id.clone()));
                }
            }
        }
    }
    if next.voters.is_empty() {
        return Err(MembershipError::RemovesLastVoter);
    }
    Ok(next)
}

/// The configurations in the log after the snapshot, oldest first. The first element
/// is the snapshot's (or the bootstrap) configuration and is never removed.
#[derive(Clone, Debug)]
pub(crate) struct ConfigHistory {
    entries: Vec<(LogIndex, Membership)>,
}

impl ConfigHistory {
    pub(crate) fn new(index: LogIndex, base: Membership) -> Self {
        ConfigHistory { entries: vec![(index, base)] }
    }

    /// The latest configuration: the one in effect.
    pub(crate) fn latest(&self) -> (LogIndex, &Membership) {
        let (i, m) = self.entries.last().expect("the base configuration is never removed");
        (*i, m)
    }

    /// The configuration in effect at `index`.
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        let pos = self.entries.partition_point(|(i, _)| *i <= index);
        &self.entries[pos.saturating_sub(1)].1
    }

    pub(crate) fn push(&mut self, index: LogIndex, m: Membership) {
        self.entries.push((index, m));
    }

    /// The log was truncated from `index` on: configurations there are undone.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        while self.entries.len() > 1 && self.entries.last().is_some_and(|(i, _)| *i >= index) {
            self.entries.pop();
        }
    }

    /// The log was compacted up to `index`: keep only what is needed from there on.
    pub(crate) fn compact_to(&mut self, index: LogIndex) {
        let pos = self.entries.partition_point(|(i, _)| *i <= index);
        if pos > 1 {
            self.entries.drain(..pos - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(voters: &[&str], learners: &[&str]) -> Membership {
        Membership {
            voters: voters.iter().map(|s| NodeId::new(s)).collect(),
            voters_outgoing: Default::default(),
            learners: learners.iter().map(|s| NodeId::new(s)).collect(),
        }
    }

    #[test]
    fn invalid_changes_are_typed_errors() {
        let cur = m(&["a", "b"], &["l"]);
        let id = NodeId::new;
        use MembershipChange::*;
        assert_eq!(apply_changes(&cur, &[]), Err(MembershipError::Empty));
        assert_eq!(apply_changes(&cur, &[Remove(id("z"))]), Err(MembershipError::UnknownNode(id("z"))));
        assert_eq!(apply_changes(&cur, &[AddVoter(id("a"))]), Err(MembershipError::AlreadyVoter(id("a"))));
        assert_eq!(apply_changes(&cur, &[AddLearner(id("l"))]), Err(MembershipError::AlreadyLearner(id("l"))));
        assert_eq!(apply_changes(&cur, &[PromoteLearner(id("a"))]), Err(MembershipError::NotALearner(id("a"))));
        assert_eq!(apply_changes(&cur, &[Remove(id("a")), Remove(id("b"))]), Err(MembershipError::RemovesLastVoter));
        assert_eq!(apply_changes(&cur, &[PromoteLearner(id("l")), Remove(id("a"))]), Ok(m(&["b", "l"], &[])));
    }

    #[test]
    fn history_reverts_on_truncation_and_answers_at_index() {
        let mut h = ConfigHistory::new(0, m(&["a"], &[]));
        h.push(5, m(&["a", "b"], &[]));
        h.push(9, m(&["a", "b", "c"], &[]));
        assert_eq!(h.at(4), &m(&["a"], &[]));
        assert_eq!(h.at(5), &m(&["a", "b"], &[]));
        assert_eq!(h.at(100), &m(&["a", "b", "c"], &[]));
        h.truncate_from(9);
        assert_eq!(h.latest(), (5, &m(&["a", "b"], &[])));
        h.compact_to(7);
        assert_eq!(h.at(7), &m(&["a", "b"], &[]));
        h.truncate_from(0);
        assert_eq!(h.latest().0, 5, "the base survives truncation");
    }
}

impl<S: crate::storage::Storage> crate::raft::Raft<S> {
    /// Rebuilds the configuration history from the snapshot's membership and the
    /// configuration entries in the log (on start and restart).
    pub(crate) fn scan_configs(
        log: &crate::log::RaftLog<S>,
        base: Membership,
    ) -> Result<ConfigHistory, crate::error::StorageError> {
        let first = log.first_index();
        let last = log.last_index();
        let mut history = ConfigHistory::new(first - 1, base);
        let mut next = first;
        while next <= last {
            let batch = log.entries(next, last + 1, u64::MAX, 4096)?;
            let Some(tail) = batch.last() else { break };
            next = tail.index + 1;
            for e in batch {
                if let crate::entry::EntryPayload::Membership(m) = e.payload {
                    history.push(e.index, m);
                }
            }
        }
        Ok(history)
    }

    /// Entries were appended to the log (possibly replacing a suffix): configuration
    /// entries among them take effect now, and replaced ones are undone.
    pub(crate) fn on_log_appended(&mut self, entries: &[crate::entry::Entry]) {
        let Some(first) = entries.first() else { return };
        self.configs.truncate_from(first.index);
        for e in entries {
            if let crate::entry::EntryPayload::Membership(m) = &e.payload {
                self.configs.push(e.index, m.clone());
            }
        }
        self.refresh_membership();
    }

    /// Makes the tracker follow the configuration in effect.
    pub(crate) fn refresh_membership(&mut self) {
        #[cfg(feature = "sim")]
        let wanted = if self.cfg.bugs.apply_config_on_commit {
            self.configs.at(self.log.committed)
        } else {
            self.configs.latest().1
        };
        #[cfg(not(feature = "sim"))]
        let wanted = self.configs.latest().1;
        if *wanted != self.tracker.membership {
            let wanted = wanted.clone();
            tracing::info!(
                id = %self.id,
                voters = ?wanted.voters,
                outgoing = ?wanted.voters_outgoing,
                learners = ?wanted.learners,
                "configuration changed"
            );
            let next = self.log.last_index() + 1;
            self.tracker.set_membership(wanted, next, self.cfg.max_inflight_msgs);
        }
    }

    /// The leader proposes a membership change: a joint configuration when voters
    /// change (the leader leaves it automatically once it commits), a simple one when
    /// only learners change.
    pub(crate) fn propose_membership_change(
        &mut self,
        changes: &[MembershipChange],
    ) -> crate::error::Result<(crate::types::Term, LogIndex)> {
        use crate::error::Error;
        if self.role != crate::types::Role::Leader {
            return Err(Error::NotLeader { leader_hint: self.leader.clone() });
        }
        if let Some(to) = &self.lead_transferee {
            return Err(Error::LeadershipTransferInProgress { to: to.clone() });
        }
        #[cfg(feature = "sim")]
        let skip_joint = self.cfg.bugs.skip_joint_consensus;
        #[cfg(not(feature = "sim"))]
        let skip_joint = false;
        let (latest_index, current) = self.configs.latest();
        let current = current.clone();
        // Dissertation §4.1: one change at a time. The previous one must be committed,
        // and a joint configuration must have been left.
        if !skip_joint && (latest_index > self.log.committed || current.is_joint()) {
            return Err(MembershipError::ChangeInProgress { index: latest_index }.into());
        }
        let target = apply_changes(&current, changes)?;
        let entry = if target.voters == current.voters || skip_joint {
            target
        } else {
            Membership {
                voters: target.voters,
                voters_outgoing: current.voters.clone(),
                learners: target.learners,
            }
        };
        tracing::info!(id = %self.id, changes = ?changes, "proposing membership change");
        let index = self.append_entries(vec![crate::entry::EntryPayload::Membership(entry)]);
        Ok((self.term, index))
    }

    /// After the commit index moved on the leader: leave a committed joint
    /// configuration, and step down once a configuration without us is committed.
    pub(crate) fn after_commit(&mut self) {
        self.refresh_membership();
        if self.role != crate::types::Role::Leader {
            return;
        }
        let (latest_index, current) = self.configs.latest();
        if latest_index > self.log.committed {
            return;
        }
        if current.is_joint() {
            let leave = Membership {
                voters: current.voters.clone(),
                voters_outgoing: Default::default(),
                learners: current.learners.clone(),
            };
            tracing::info!(id = %self.id, "joint configuration committed; leaving it");
            self.append_entries(vec![crate::entry::EntryPayload::Membership(leave)]);
        } else if !current.is_voter(&self.id) {
            tracing::info!(id = %self.id, term = self.term, "removed from the configuration; stepping down");
            let term = self.term;
            self.become_follower(term, None);
        }
    }
}
