//! `RaftConfig`: the runtime's settings, in wall-clock units (election timeout,
//! heartbeat interval, batch sizes, snapshot interval, limits), from which each node's
//! core configuration in ticks is derived (`RaftConfig::core_config`).

use std::time::Duration;

use raft_core::{Config, ConfigError, NodeId};

/// How a node runs. [`RaftConfig::core_config`] derives the core's tick-based
/// [`Config`] from it (one tick per heartbeat interval) and checks both; that is the
/// only way from this struct to the core's. A knob that the core uses is documented
/// on the core's field, linked from here; the runtime's own knobs are documented here.
///
/// A serde type (every field optional, defaults from [`RaftConfig::default`], unknown
/// keys refused, durations written as `"300ms"`, `"5s"`), so a server reads it from a
/// file: `easyraft-server`'s `[raft]` section is this struct.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// The minimum election timeout, in wall-clock time: [`Config::election_tick`] is
    /// this many heartbeat intervals ([`RaftConfig::election_ticks`], at least 2).
    /// Also how long a leader's own log write may stall before it steps down (see
    /// `disk_stall_timeout`).
    #[serde(with = "crate::duration::serde")]
    pub election_timeout: Duration,
    /// The tick: the node task ticks the core once per interval, and the leader sends
    /// heartbeats every tick ([`Config::heartbeat_tick`] is 1).
    #[serde(with = "crate::duration::serde")]
    pub heartbeat_interval: Duration,
    /// At most this many proposals taken into one batch by the node task (one log
    /// append; the log writer may merge several batches into one fsync).
    pub max_batch_size: usize,
    /// [`Config::max_entries_per_msg`] (0 is taken as 1).
    pub max_entries_per_msg: usize,
    /// At most this many committed entries handed to the apply worker and not yet
    /// applied: a slow state machine makes the node hold back, not queue without
    /// bound.
    pub max_unapplied_entries: u64,
    /// Leader lease reads (off by default): [`Config::read_lease_ticks`] becomes the
    /// election timeout less two ticks (at least one), which the core's field explains
    /// with its clock assumption; off, every read takes ReadIndex's heartbeat round,
    /// which assumes nothing of clocks. Needs `check_quorum`.
    pub lease_reads: bool,
    /// Take a snapshot and compact the log every this many applied entries (0: never).
    pub snapshot_interval: u64,
    /// How long `propose`, `read` and membership calls wait before giving up with a
    /// timeout error (whose outcome is unknown).
    #[serde(with = "crate::duration::serde")]
    pub request_timeout: Duration,
    /// [`Config::pre_vote`] (on by default).
    pub pre_vote: bool,
    /// [`Config::check_quorum`] (on by default).
    pub check_quorum: bool,
    /// [`Config::quiesce`] (off by default): an idle group stops heartbeating and
    /// ticking. Only for the groups of a [`crate::RaftHost`], whose per-peer liveness
    /// beats then detect failures for all of them (`HostOptions::quiesce` sets it);
    /// a node on its own with it on would not notice its leader die while quiesced.
    pub quiesce: bool,
    /// [`Config::snapshot_chunk_bytes`].
    pub snapshot_chunk_bytes: u64,
    /// [`Config::max_bytes_per_msg`].
    pub max_bytes_per_msg: u64,
    /// [`Config::max_inflight_msgs`].
    pub max_inflight_msgs: usize,
    /// [`Config::max_inflight_bytes`] (default 32 MiB).
    pub max_inflight_bytes: u64,
    /// [`Config::max_uncommitted_bytes`] (default 64 MiB); a proposal past it fails at
    /// once with [`crate::Error::Backpressure`].
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
            quiesce: false,
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

    /// The core configuration for node `id` (`seed` picks its election timeouts):
    /// the one place a [`Config`] is made from a `RaftConfig`. Checks the settings,
    /// the runtime's own included (`outbound_queue` and `max_outbound_bytes` must be
    /// at least 1). Snapshots are streamed ([`Config::stream_snapshots`]): the
    /// runtime stages a leader's snapshot through the apply worker, never whole in
    /// memory.
    pub fn core_config(&self, id: &NodeId, seed: u64) -> Result<Config, ConfigError> {
        let election_tick = self.election_ticks();
        let mut c = Config::new(id.clone());
        c.election_tick = election_tick;
        c.heartbeat_tick = 1;
        c.pre_vote = self.pre_vote;
        c.check_quorum = self.check_quorum;
        c.quiesce = self.quiesce;
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
        c.stream_snapshots = true;
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
