//! What a node tells its observers as a broadcast stream: a leader elected, a change
//! of role, an entry applied, a snapshot installed.

use raft_core::{LogIndex, NodeId, Role, Term};

/// An event of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftEvent {
    /// A committed entry was applied to the state machine.
    EntryApplied {
        /// Its index.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// The node's role changed.
    StateChanged {
        /// The new role.
        role: Role,
        /// The term.
        term: Term,
    },
    /// The node learned of a (new) leader.
    LeaderElected {
        /// The leader.
        leader: NodeId,
        /// Its term.
        term: Term,
    },
    /// The state machine was replaced by a snapshot.
    SnapshotInstalled {
        /// The snapshot's last index.
        index: LogIndex,
    },
}

/// The cheap view of a node for waiting on leadership: role, term, leader, applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The role.
    pub role: Role,
    /// The term.
    pub term: Term,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// The commit index.
    pub commit: LogIndex,
    /// The last applied index.
    pub applied: LogIndex,
    /// Whether the node is running.
    pub running: bool,
    /// A log write has been in flight longer than `RaftConfig::disk_stall_timeout`
    /// (`/health` reports it).
    pub disk_stalled: bool,
    /// The group is idle and quiesced ([`crate::RaftConfig::quiesce`]): it sends no
    /// heartbeats and does not tick until something wakes it.
    pub quiesced: bool,
}
