//! The `[raft]` section: [`RaftConfig`] as it reads in a file, durations as strings.
//!
//! A mirror rather than serde on `RaftConfig` itself: the file format (durations as
//! `"300ms"`, unknown keys refused) is the server's concern, and raft-cluster stays a
//! library with no opinion on it. Both conversions are exhaustive struct literals, so
//! a field added to `RaftConfig` fails to compile here until it is mapped.

use std::time::Duration;

use easyraft::RaftConfig;
use serde::{Deserialize, Serialize};

/// `[raft]`: every field of [`RaftConfig`], with its defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)] // each field is documented on RaftConfig
pub struct RaftSection {
    #[serde(with = "crate::duration::serde")]
    pub election_timeout: Duration,
    #[serde(with = "crate::duration::serde")]
    pub heartbeat_interval: Duration,
    pub max_batch_size: usize,
    pub max_entries_per_msg: usize,
    pub max_unapplied_entries: u64,
    pub lease_reads: bool,
    pub snapshot_interval: u64,
    #[serde(with = "crate::duration::serde")]
    pub request_timeout: Duration,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub snapshot_chunk_bytes: u64,
    pub max_bytes_per_msg: u64,
    pub max_inflight_msgs: usize,
    pub max_inflight_bytes: u64,
    pub max_uncommitted_bytes: u64,
    #[serde(with = "crate::duration::serde")]
    pub disk_stall_timeout: Duration,
    pub outbound_queue: usize,
    pub max_outbound_bytes: u64,
}

impl Default for RaftSection {
    fn default() -> Self {
        RaftConfig::default().into()
    }
}

impl From<RaftConfig> for RaftSection {
    fn from(c: RaftConfig) -> Self {
        RaftSection {
            election_timeout: c.election_timeout,
            heartbeat_interval: c.heartbeat_interval,
            max_batch_size: c.max_batch_size,
            max_entries_per_msg: c.max_entries_per_msg,
            max_unapplied_entries: c.max_unapplied_entries,
            lease_reads: c.lease_reads,
            snapshot_interval: c.snapshot_interval,
            request_timeout: c.request_timeout,
            pre_vote: c.pre_vote,
            check_quorum: c.check_quorum,
            snapshot_chunk_bytes: c.snapshot_chunk_bytes,
            max_bytes_per_msg: c.max_bytes_per_msg,
            max_inflight_msgs: c.max_inflight_msgs,
            max_inflight_bytes: c.max_inflight_bytes,
            max_uncommitted_bytes: c.max_uncommitted_bytes,
            disk_stall_timeout: c.disk_stall_timeout,
            outbound_queue: c.outbound_queue,
            max_outbound_bytes: c.max_outbound_bytes,
        }
    }
}

impl From<&RaftSection> for RaftConfig {
    fn from(c: &RaftSection) -> Self {
        RaftConfig {
            election_timeout: c.election_timeout,
            heartbeat_interval: c.heartbeat_interval,
            max_batch_size: c.max_batch_size,
            max_entries_per_msg: c.max_entries_per_msg,
            max_unapplied_entries: c.max_unapplied_entries,
            lease_reads: c.lease_reads,
            snapshot_interval: c.snapshot_interval,
            request_timeout: c.request_timeout,
            pre_vote: c.pre_vote,
            check_quorum: c.check_quorum,
            snapshot_chunk_bytes: c.snapshot_chunk_bytes,
            max_bytes_per_msg: c.max_bytes_per_msg,
            max_inflight_msgs: c.max_inflight_msgs,
            max_inflight_bytes: c.max_inflight_bytes,
            max_uncommitted_bytes: c.max_uncommitted_bytes,
            disk_stall_timeout: c.disk_stall_timeout,
            outbound_queue: c.outbound_queue,
            max_outbound_bytes: c.max_outbound_bytes,
        }
    }
}
