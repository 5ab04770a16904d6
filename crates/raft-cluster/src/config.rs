//! `RaftConfig`: the runtime's settings, in wall-clock units (election timeout,
//! heartbeat interval, batch sizes, snapshot interval, limits), from which each node's
//! core configuration in ticks is derived.

use std::time::Duration;

use raft_core::{Config, ConfigError, NodeId};

/// How a node runs. Converted into the core's tick-based [`Config`]: one tick per
/// heartbeat interval.
///
/// A serde type (every field optional, defaults from [`RaftConfig::default`], unknown
/// keys refused, durations written as `"300ms"`, `"5s"`), so a server reads it from a
/// file: `easyraft-server`'s `[raft]` section is this struct.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// The minimum election timeout; followers wait a random time in
    /// `[election_timeout, 2 * election_timeout)` before campaigning.
    #[serde(with = "crate::duration::serde")]
    pub election_timeout: Duration,
    /// How often the leader sends heartbeats (also the tick interval).
    #[serde(with = "crate::duration::serde")]
    pub heartbeat_interval: Duration,
    /// At most this many proposals taken into one batch by the node task (one log
    /// append; the log writer may merge several batches into one fsync).
    pub max_batch_size: usize,
    /// At most this many entries per AppendEntries message (bytes are capped by
    /// `max_bytes_per_msg`).
    pub max_entries_per_msg: usize,
    /// At most this many committed entries handed to the apply worker and not yet
    /// applied: a slow state machine makes the node hold back, not queue without
    /// bound.
    pub max_unapplied_entries: u64,
    /// Leader lease reads (off by default): a leader that heard from a quorum within
    /// the last `election_timeout - 2 * heartbeat_interval` serves `read` without a
    /// heartbeat round. Needs check-quorum, and assumes the nodes' clocks run at
    /// nearly the same rate (a paused process or a clock jump longer than that margin
    /// can break linearizability); ReadIndex makes no clock assumption.
    pub lease_reads: bool,
    /// Take a snapshot and compact the log every this many applied entries (0: never).
    pub snapshot_interval: u64,
    /// How long `propose`, `read` and membership calls wait before giving up with a
    /// timeout error (whose outcome is unknown).
    #[serde(with = "crate::duration::serde")]
    pub request_timeout: Duration,
    /// Pre-vote (on by default).
    pub pre_vote: bool,
    /// Check-quorum (on by default).
    pub check_quorum: bool,
    /// InstallSnapshot chunk size in bytes.
    pub snapshot_chunk_bytes: u64,
    /// At most this many bytes of entries per AppendEntries message.
    pub max_bytes_per_msg: u64,
    /// At most this many AppendEntries in flight per follower.
    pub max_inflight_msgs: usize,
    /// At most this many bytes of entries in unacknowledged AppendEntries per
    /// follower, on top of `max_inflight_msgs`: the leader stops streaming to a
    /// follower whose acknowledgements lag this far behind (an entry larger than this
    /// still goes, alone). Default 32 MiB.
    pub max_inflight_bytes: u64,
    /// At most this many bytes of commands the leader appended and has not committed
    /// yet: `propose` past it fails at once with [`crate::Error::Backpressure`]
    /// (nothing was proposed; retry later). A command is always taken when nothing is
    /// uncommitted. Default 64 MiB.
    pub max_uncommitted_bytes: u64,
    /// A log write (fsync included) in flight for longer than this makes the node
    /// unhealthy (`/health` answers 503 `disk-stalled`); a leader whose write is
    /// stuck for longer than `election_timeout` steps down.
    #[serde(with = "crate::duration::serde")]
    pub disk_stall_timeout: Duration,
    /// Capacity of each peer's outbound queue, in messages; when full, messages to
    /// that peer are dropped (Raft retries) instead of blocking the node.
    pub outbound_queue: usize,
    /// Capacity of each peer's outbound queue in bytes (entries and snapshot chunks,
    /// plus a fixed overhead per message), counted until the transport has sent them.
    /// Beyond it messages to that peer are dropped and counted
    /// ([`crate::Metrics::outbound_dropped`]), and the peer is reported unreachable
    /// so the leader probes it again; a message is always queued when the queue is
    /// empty. Default 64 MiB.
    pub max_outbound_bytes: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_millis(100),
            max_batch_size: 1024,
            max_entries_per_msg: 1024,
            max_unapplied_entries: 8192,
            lease_reads: false,
            snapshot_interval: 10_000,
            request_timeout: Duration::from_secs(5),
            pre_vote: true,
            check_quorum: true,
            snapshot_chunk_bytes: 1 << 20,
            max_bytes_per_msg: 1 << 20,
            max_inflight_msgs: 64,
            max_inflight_bytes: 32 << 20,
            max_uncommitted_bytes: 64 << 20,
            outbound_queue: 4096,
            max_outbound_bytes: 64 << 20,
            disk_stall_timeout: Duration::from_secs(2),
        }
    }
}

impl RaftConfig {
    /// Settings for tests on one machine: fast elections and heartbeats.
    pub fn fast() -> Self {
        RaftConfig {
            election_timeout: Duration::from_millis(150),
            heartbeat_interval: Duration::from_millis(15),
            request_timeout: Duration::from_secs(3),
            ..RaftConfig::default()
        }
    }

    /// The election timeout in ticks (one tick per heartbeat interval), at least 2.
    pub fn election_ticks(&self) -> u64 {
        let hb = self.heartbeat_interval.as_millis().max(1);
        u64::try_from(self.election_timeout.as_millis() / hb)
            .unwrap_or(u64::MAX)
            .max(2)
    }

    /// The core configuration for node `id` (`seed` picks its election timeouts).
    /// Checks the settings, the runtime's own included (`outbound_queue` and
    /// `max_outbound_bytes` must be at least 1).
    pub fn core_config(&self, id: &NodeId, seed: u64) -> Result<Config, ConfigError> {
        let election_tick = self.election_ticks();
        let mut c = Config::new(id.clone());
        c.election_tick = election_tick;
        c.heartbeat_tick = 1;
        c.pre_vote = self.pre_vote;
        c.check_quorum = self.check_quorum;
        c.max_entries_per_msg = self.max_entries_per_msg.max(1);
        if self.lease_reads {
            // Two ticks of margin for drift and scheduling below the election timeout.
            c.read_lease_ticks = Some(election_tick.saturating_sub(2).max(1));
        }
        c.max_bytes_per_msg = self.max_bytes_per_msg;
        c.max_inflight_msgs = self.max_inflight_msgs;
        c.max_inflight_bytes = self.max_inflight_bytes;
        c.max_uncommitted_bytes = self.max_uncommitted_bytes;
        c.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        c.seed = seed;
        c.validate()?;
        if self.outbound_queue == 0 {
            return Err(ConfigError::Zero("outbound_queue"));
        }
        if self.max_outbound_bytes == 0 {
            return Err(ConfigError::Zero("max_outbound_bytes"));
        }
        Ok(c)
    }
}
