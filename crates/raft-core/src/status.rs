//! What a node tells about itself: its [`Status`] for operators and tests, and the
//! one line that `RawNode::describe` prints for logs and test failures.

use std::collections::BTreeMap;

use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{LogIndex, Membership, NodeId, Role, Term};

/// Where the leader stands with one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerProgress {
    /// The highest index known to match the leader's log.
    pub match_index: LogIndex,
    /// The next index to send.
    pub next_index: LogIndex,
    /// The replication mode.
    pub state: ProgressState,
}

/// A snapshot of a node's state for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// The role.
    pub role: Role,
    /// The current term.
    pub term: Term,
    /// The vote in this term.
    pub vote: Option<NodeId>,
    /// The known leader.
    pub leader: Option<NodeId>,
    /// Quiesced ([`crate::Config::quiesce`]): the node's timers are stopped.
    pub quiesced: bool,
    /// The commit index.
    pub commit: LogIndex,
    /// The applied index.
    pub applied: LogIndex,
    /// The first index still in the log.
    pub first_index: LogIndex,
    /// The last index of the log.
    pub last_index: LogIndex,
    /// The membership in effect.
    pub membership: Membership,
    /// Per-member replication progress (on the leader only).
    pub progress: BTreeMap<NodeId, PeerProgress>,
}

impl Status {
    /// The state of `r` now.
    pub(crate) fn of<S: Storage>(r: &Raft<S>) -> Status {
        let progress = r
            .leader_state
            .iter()
            .flat_map(|leader| &leader.progress)
            .map(|(id, p)| {
                (
                    id.clone(),
                    PeerProgress {
                        match_index: p.match_index,
                        next_index: p.next_index,
                        state: p.state,
                    },
                )
            })
            .collect();
        Status {
            id: r.id.clone(),
            role: r.role,
            term: r.term,
            vote: r.vote.clone(),
            leader: r.leader.clone(),
            quiesced: r.quiesced,
            commit: r.log.committed,
            applied: r.log.applied,
            first_index: r.log.first_index(),
            last_index: r.log.last_index(),
            membership: r.tracker.membership.clone(),
            progress,
        }
    }
}

/// One line describing `r`: `n1 leader t2 vote=.. leader=.. log=1..=5 commit=5
/// applied=5`, and on a leader its uncommitted bytes and each member's progress.
pub(crate) fn describe<S: Storage>(r: &Raft<S>) -> String {
    let mut s = format!(
        "{} {} t{} vote={:?} leader={:?} log={}..={} commit={} applied={}",
        r.id,
        r.role,
        r.term,
        r.vote.as_ref().map(|v| v.as_str()),
        r.leader.as_ref().map(|v| v.as_str()),
        r.log.first_index(),
        r.log.last_index(),
        r.log.committed,
        r.log.applied
    );
    if r.quiesced {
        s.push_str(" quiesced");
    }
    if let Some(leader) = &r.leader_state {
        s.push_str(&format!(" uncommitted={}B", leader.uncommitted.bytes()));
        for (id, p) in &leader.progress {
            s.push_str(&format!(" [{id}: {p}]"));
        }
    }
    s
}
