//! Quorum arithmetic: the commit index a majority has reached, and election results,
//! for simple and joint configurations.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{LogIndex, NodeId};

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Won,
    Lost,
    Pending,
}

/// The largest index acknowledged by a majority of `voters`; `u64::MAX` for an empty
/// set (so that it never limits the other half of a joint configuration).
pub(crate) fn majority_index(voters: &BTreeSet<NodeId>, acked: impl Fn(&NodeId) -> LogIndex) -> LogIndex {
    if voters.is_empty() {
        return LogIndex::MAX;
    }
    let mut idx: Vec<LogIndex> = voters.iter().map(acked).collect();
    idx.sort_unstable_by(|a, b| b.cmp(a));
    idx[voters.len() / 2]
}

/// The election result among `voters` given the answers in `votes`.
pub(crate) fn majority_vote(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0, 0);
    for v in voters {
        match votes.get(v) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let q = voters.len() / 2 + 1;
    if yes >= q {
        VoteResult::Won
    } else if yes + missing >= q {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// Joint consensus: both halves must agree.
pub(crate) fn joint_vote(a: VoteResult, b: VoteResult) -> VoteResult {
    match (a, b) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> BTreeSet<NodeId> {
        (0..n).map(|i| NodeId::new(format!("n{i}"))).collect()
    }

    proptest! {
        /// The optimized index equals the naive definition: the largest index that
        /// at least a majority of voters have reached.
        #[test]
        fn majority_index_is_largest_index_a_majority_reached(acks in proptest::collection::vec(0u64..20, 1..8)) {
            let voters = ids(acks.len());
            let map: BTreeMap<NodeId, u64> = voters.iter().cloned().zip(acks.iter().copied()).collect();
            let got = majority_index(&voters, |id| map[id]);
            let naive = (0..20u64).rev()
                .find(|&i| acks.iter().filter(|&&a| a >= i).count() > acks.len() / 2)
                .unwrap_or(0);
            prop_assert_eq!(got, naive);
        }

        /// Won iff a majority said yes; Lost iff a majority can no longer say yes.
        #[test]
        fn vote_result_matches_counting(answers in proptest::collection::vec(proptest::option::of(any::<bool>()), 1..8)) {
            let voters = ids(answers.len());
            let votes: BTreeMap<NodeId, bool> = voters.iter().cloned().zip(answers.iter().copied())
                .filter_map(|(id, a)| a.map(|a| (id, a))).collect();
            let yes = answers.iter().filter(|a| **a == Some(true)).count();
            let no = answers.iter().filter(|a| **a == Some(false)).count();
            let q = answers.len() / 2 + 1;
            let expect = if yes >= q { VoteResult::Won } else if answers.len() - no < q { VoteResult::Lost } else { VoteResult::Pending };
            prop_assert_eq!(majority_vote(&voters, &votes), expect);
        }
    }

    #[test]
    fn joint_needs_both_halves() {
        use VoteResult::*;
        assert_eq!(joint_vote(Won, Won), Won);
        assert_eq!(joint_vote(Won, Pending), Pending);
        assert_eq!(joint_vote(Won, Lost), Lost);
        assert_eq!(joint_vote(Pending, Lost), Lost);
    }
}
