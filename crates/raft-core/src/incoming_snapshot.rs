//! The follower's side of a snapshot transfer in progress: what it has received of
//! the leader's snapshot so far (the rules that fill it are in `snapshot.rs`).

use crate::entry::SnapshotMeta;
use crate::types::NodeId;

/// A snapshot a follower is receiving in chunks.
pub(crate) struct IncomingSnapshot {
    /// What the snapshot covers; a chunk of another snapshot starts over.
    pub(crate) meta: SnapshotMeta,
    /// The leader sending it.
    pub(crate) from: NodeId,
    /// Its stated length in bytes.
    pub(crate) total: u64,
    /// Its stated CRC-32 (IEEE), checked once the last chunk is in.
    pub(crate) crc: u32,
    /// Bytes received in order so far (at most `total`: checked at the step boundary).
    pub(crate) received: u64,
    /// The running checksum of those bytes.
    pub(crate) hasher: crc32fast::Hasher,
    /// The data so far, when the core assembles snapshots in memory; `None` when the
    /// driver stages them (`Config::stream_snapshots`).
    pub(crate) data: Option<bytes::BytesMut>,
    /// Complete and checksummed; waiting for the driver's verdict.
    pub(crate) verifying: bool,
}
