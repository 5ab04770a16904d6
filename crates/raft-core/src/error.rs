//! The crate's typed errors. They are `Clone` (a storage error's source is shared
//! behind an `Arc`), so a driver that refuses several requests for one reason answers
//! each with the same error.

use std::sync::Arc;

use thiserror::Error;

use crate::types::{LogIndex, NodeId};

/// Errors of the protocol API.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A proposal, read or leadership transfer reached a node that is not the leader.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node knows of, if any: retry there.
        leader_hint: Option<NodeId>,
    },
    /// The leader is handing leadership over and accepts no proposals meanwhile.
    #[error("leadership transfer to {to} in progress")]
    LeadershipTransferInProgress {
        /// The node leadership is being transferred to.
        to: NodeId,
    },
    /// The named node is not a member of the cluster.
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    /// A message addressed to another node or another group reached this one.
    #[error("message for {to} (group {group}) delivered to {local} (group {local_group})")]
    Misdelivered {
        /// The message's target.
        to: NodeId,
        /// The message's group.
        group: u64,
        /// This node.
        local: NodeId,
        /// This node's group.
        local_group: u64,
    },
    /// A membership change was refused.
    #[error("membership change refused: {0}")]
    Membership(#[from] crate::membership::MembershipError),
    /// A snapshot was requested at or behind the current one.
    #[error("snapshot at {index} is not newer than the current snapshot at {snapshot_index}")]
    SnapshotOutOfDate {
        /// The requested index.
        index: LogIndex,
        /// The index of the current snapshot.
        snapshot_index: LogIndex,
    },
    /// A snapshot was requested beyond what the application has applied.
    #[error("snapshot at {index} is beyond the applied index {applied}")]
    SnapshotNotApplied {
        /// The requested index.
        index: LogIndex,
        /// The applied index.
        applied: LogIndex,
    },
    /// A snapshot was requested at an index where this node knows no configuration:
    /// it joined with an empty one and its log has no configuration entry up to
    /// `index` yet (the cluster's first configuration is in the founders' snapshots).
    /// A snapshot without voters would be refused by every node it is sent to.
    #[error("no configuration is known at {index}; a snapshot there would have no voters")]
    SnapshotMembershipUnknown {
        /// The requested index.
        index: LogIndex,
    },
    /// A message was refused at the step boundary: it carries a term or index the
    /// protocol cannot work with (see [`crate::bounds`]). Nothing changed.
    #[error("refused a message from {from}: {reason}")]
    Refused {
        /// The message's sender.
        from: NodeId,
        /// What is wrong with the message.
        reason: crate::bounds::Refusal,
    },
    /// The log reached [`crate::bounds::MAX_INDEX`]: no entry can be appended.
    #[error("the log is full: last index {last_index} reached the index limit")]
    LogFull {
        /// The last index of the log.
        last_index: LogIndex,
    },
    /// The leader refused a proposal: the bytes of the commands it appended in its
    /// term and has not committed yet would go beyond `Config::max_uncommitted_bytes`
    /// (the followers or the disk are not keeping up). Nothing was appended; retrying
    /// later is safe.
    #[error(
        "backpressure: {uncommitted} bytes uncommitted, a proposal of {size} bytes would exceed the limit of {limit}"
    )]
    Backpressure {
        /// Bytes of commands appended and not yet committed.
        uncommitted: u64,
        /// The bytes of the refused proposal.
        size: u64,
        /// The configured limit (`Config::max_uncommitted_bytes`).
        limit: u64,
    },
    /// The configuration is not usable.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// What is wrong with a [`crate::Config`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The node id is empty.
    #[error("node id must not be empty")]
    EmptyId,
    /// `heartbeat_tick` is zero.
    #[error("heartbeat_tick must be at least 1")]
    ZeroHeartbeat,
    /// `election_tick` is not larger than `heartbeat_tick`.
    #[error("election_tick ({election}) must be larger than heartbeat_tick ({heartbeat})")]
    ElectionNotAboveHeartbeat {
        /// The configured election tick.
        election: u64,
        /// The configured heartbeat tick.
        heartbeat: u64,
    },
    /// `max_inflight_msgs` is zero.
    #[error("max_inflight_msgs must be at least 1")]
    ZeroInflight,
    /// `snapshot_chunk_bytes` is zero.
    #[error("snapshot_chunk_bytes must be at least 1")]
    ZeroSnapshotChunk,
    /// Lease reads are only safe when a leader steps down after losing its quorum.
    #[error("read_lease_ticks requires check_quorum")]
    LeaseNeedsCheckQuorum,
    /// The lease must be shorter than the election timeout, with room for clock drift.
    #[error("read_lease_ticks ({lease}) must be shorter than election_tick ({election})")]
    LeaseNotShorterThanElection {
        /// The configured lease.
        lease: u64,
        /// The configured election tick.
        election: u64,
    },
    /// A setting that must be at least 1 is zero (the setting's name).
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// `max_entries_per_msg` is zero.
    #[error("max_entries_per_msg must be at least 1")]
    ZeroEntriesPerMsg,
    /// `max_entries_per_msg` is above what a receiver decodes.
    #[error("max_entries_per_msg ({0}) must be at most {max}", max = crate::bounds::MAX_ENTRIES_PER_MESSAGE)]
    TooManyEntriesPerMsg(usize),
}

/// Errors a [`crate::Storage`] returns.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The requested index is behind the snapshot: the entries were compacted away.
    #[error("log index {0} is compacted")]
    Compacted(LogIndex),
    /// The requested index is beyond the last entry.
    #[error("log index {0} is unavailable")]
    Unavailable(LogIndex),
    /// The snapshot is being built; ask again later.
    #[error("snapshot temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// The storage reports a log that cannot be: a first index of 0, a last index
    /// before the first, or an index beyond [`crate::bounds::MAX_INDEX`].
    #[error("storage reports an impossible log: first index {first}, last index {last}")]
    ImpossibleLog {
        /// The reported first index.
        first: LogIndex,
        /// The reported last index.
        last: LogIndex,
    },
    /// Anything else (an IO error, corruption...), from the storage implementation.
    /// Shared, so that the error can be cloned; make one with [`StorageError::other`].
    #[error(transparent)]
    Other(Arc<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// A [`StorageError::Other`] from an implementation's error (or a message).
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StorageError::Other(Arc::from(e.into()))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
