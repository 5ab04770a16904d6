//! The runtime's error type: precise inside, with stable queries outside
//! (`is_not_leader`, `leader_hint`, `is_timeout`).

use raft_core::{MembershipError, NodeId};
use thiserror::Error;

/// A boxed error from user code (state machine) or an implementation (transport).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the node handle.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// This node is not the leader; retry on the hinted one.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader_hint: Option<NodeId>,
    },
    /// No answer within the request timeout. For a proposal the outcome is unknown:
    /// it may still be committed.
    #[error("timed out after {0:?}; the outcome is unknown")]
    Timeout(std::time::Duration),
    /// A linearizable read could not be served in time (no leader was reachable);
    /// a read changes nothing, so it is always safe to retry.
    #[error("the read could not be served within {0:?} (no reachable leader); retry")]
    ReadTimeout(std::time::Duration),
    /// The proposal was appended but replaced by another leader's entry: it was not
    /// applied and never will be.
    #[error("the proposal was dropped by a leader change")]
    ProposalDropped,
    /// The leader refused the proposal: too many bytes of commands are appended and
    /// not yet committed (`RaftConfig::max_uncommitted_bytes`; the followers or the
    /// disk are not keeping up). Nothing was proposed: retrying later is safe.
    #[error("backpressure: the leader has {uncommitted} bytes uncommitted (limit {limit}); nothing was proposed, retry later")]
    Backpressure {
        /// Bytes of commands appended and not yet committed.
        uncommitted: u64,
        /// The limit (`RaftConfig::max_uncommitted_bytes`).
        limit: u64,
    },
    /// A leadership transfer is in progress; retry shortly.
    #[error("leadership transfer to {0} in progress")]
    TransferInProgress(NodeId),
    /// A membership change was refused.
    #[error("membership change refused: {0}")]
    Membership(#[from] MembershipError),
    /// The node is shutting down or has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A command or query could not be encoded.
    #[error("encoding: {0}")]
    Encoding(String),
    /// The storage failed; the node stops rather than risk safety.
    #[error("storage: {0}")]
    Storage(BoxError),
    /// The state machine failed to snapshot or restore.
    #[error("state machine: {0}")]
    StateMachine(BoxError),
    /// Another error of the protocol core.
    #[error("raft: {0}")]
    Raft(raft_core::Error),
    /// The transport failed to start.
    #[error("transport: {0}")]
    Transport(TransportError),
    /// An unexpected internal error (a bug: please report it).
    #[error("internal: {0}")]
    Internal(String),
    /// The configuration is invalid.
    #[error("invalid config: {0}")]
    Config(#[from] raft_core::ConfigError),
    /// The host already runs a group with this id ([`crate::RaftHost::create_group`]).
    #[error("group {0} already exists on this node")]
    GroupExists(raft_core::GroupId),
    /// The host runs no group with this id.
    #[error("no group {0} on this node")]
    UnknownGroup(raft_core::GroupId),
    /// The group id is reserved ([`crate::LIVENESS_GROUP`], the hosts' liveness beats).
    #[error("group id {0} is reserved")]
    ReservedGroup(raft_core::GroupId),
}

impl Error {
    /// Whether the request reached a node that is not the leader.
    pub fn is_not_leader(&self) -> bool {
        matches!(self, Error::NotLeader { .. })
    }

    /// The leader to retry on, if known.
    pub fn leader_hint(&self) -> Option<&NodeId> {
        match self {
            Error::NotLeader { leader_hint } => leader_hint.as_ref(),
            _ => None,
        }
    }

    /// Whether the leader refused a proposal to hold back its uncommitted bytes
    /// ([`Error::Backpressure`]): nothing was proposed, retry later.
    pub fn is_backpressure(&self) -> bool {
        matches!(self, Error::Backpressure { .. })
    }

    /// Whether the request timed out (for a write its outcome is unknown; a read
    /// changed nothing).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::ReadTimeout(_))
    }
}

impl From<raft_core::Error> for Error {
    fn from(e: raft_core::Error) -> Self {
        match e {
            raft_core::Error::NotLeader { leader_hint } => Error::NotLeader { leader_hint },
            raft_core::Error::LeadershipTransferInProgress { to } => Error::TransferInProgress(to),
            raft_core::Error::Membership(m) => Error::Membership(m),
            raft_core::Error::Backpressure { uncommitted, limit, .. } => Error::Backpressure { uncommitted, limit },
            raft_core::Error::Config(c) => Error::Config(c),
            other => Error::Raft(other),
        }
    }
}

impl From<raft_core::StorageError> for Error {
    fn from(e: raft_core::StorageError) -> Self {
        Error::Storage(Box::new(e))
    }
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a send failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer could not be reached (no address, connection refused, reset...).
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The peer did not answer in time.
    #[error("timed out sending to {0}")]
    Timeout(NodeId),
    /// A message exceeded the size limit.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The transport was shut down.
    #[error("transport closed")]
    Closed,
    /// Anything else, from an implementation.
    #[error(transparent)]
    Other(BoxError),
}
