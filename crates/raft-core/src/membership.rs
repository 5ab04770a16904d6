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
        ConfigHistory {
            entries: vec![(index, base)],
        }
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
            voters: voters.iter().map(NodeId::new).collect(),
            voters_outgoing: Default::default(),
            learners: learners.iter().map(NodeId::new).collect(),
        }
    }

    #[test]
    fn invalid_changes_are_typed_errors() {
        let cur = m(&["a", "b"], &["l"]);
        let id = NodeId::new;
        use MembershipChange::*;
        assert_eq!(apply_changes(&cur, &[]), Err(MembershipError::Empty));
        assert_eq!(
            apply_changes(&cur, &[Remove(id("z"))]),
            Err(MembershipError::UnknownNode(id("z")))
        );
        assert_eq!(
            apply_changes(&cur, &[AddVoter(id("a"))]),
            Err(MembershipError::AlreadyVoter(id("a")))
        );
        assert_eq!(
            apply_changes(&cur, &[AddLearner(id("l"))]),
            Err(MembershipError::AlreadyLearner(id("l")))
        );
        assert_eq!(
            apply_changes(&cur, &[PromoteLearner(id("a"))]),
            Err(MembershipError::NotALearner(id("a")))
        );
        assert_eq!(
            apply_changes(&cur, &[Remove(id("a")), Remove(id("b"))]),
            Err(MembershipError::RemovesLastVoter)
        );
        assert_eq!(
            apply_changes(&cur, &[PromoteLearner(id("l")), Remove(id("a"))]),
            Ok(m(&["b", "l"], &[]))
        );
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
