//! The configuration of one node.

use crate::error::ConfigError;
use crate::message::GroupId;
use crate::planted_bugs::PlantedBugs;
use crate::types::{LogIndex, NodeId};

/// With [`Config::quiesce`], how many ticks in a row a leader's group must be idle
/// before the leader quiesces it (counted in ticks the leader is awake).
pub const QUIESCE_IDLE_TICKS: u64 = 3;

/// The configuration of one Raft node. Times are in ticks: the driver calls
/// [`crate::RawNode::tick`] at a fixed interval (100 ms is typical).
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// The Raft group; messages of other groups are refused.
    pub group: GroupId,
    /// A follower that hears nothing from a leader for a random number of ticks in
    /// `[election_tick, 2 * election_tick)` starts an election.
    pub election_tick: u64,
    /// A leader sends heartbeats every `heartbeat_tick` ticks.
    pub heartbeat_tick: u64,
    /// Run a pre-vote round before a real election, so a node that was partitioned
    /// away cannot disrupt the cluster by bumping the term when it returns.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps
    /// down; and a node that heard from a leader within the election timeout ignores
    /// vote requests (so a removed or flapping node cannot disrupt the cluster).
    pub check_quorum: bool,
    /// At most this many entries in one AppendEntries message.
    pub max_entries_per_msg: usize,
    /// At most this many bytes of entries in one AppendEntries message (at least one
    /// entry is always sent).
    pub max_bytes_per_msg: u64,
    /// At most this many AppendEntries messages in flight to one follower.
    pub max_inflight_msgs: usize,
    /// At most this many bytes of entries (as [`crate::Entry::size`] counts them: the
    /// payload plus a fixed per-entry overhead) in unacknowledged AppendEntries to one
    /// follower in the replicate state, on top of the `max_inflight_msgs` window. The
    /// leader stops streaming to the follower when its in-flight bytes reach the limit
    /// and resumes as acknowledgements free them; a message is cut to the room left,
    /// but always carries at least one entry, so an entry larger than the limit is
    /// still sent once nothing is in flight. Default 32 MiB.
    pub max_inflight_bytes: u64,
    /// At most this many bytes of proposed commands (as [`crate::Entry::size`] counts
    /// them) that the leader appended in its term and has not committed yet. A
    /// proposal that would go beyond it is refused with [`crate::Error::Backpressure`]
    /// and nothing is appended; retry once the followers catch up. A proposal is
    /// always accepted when nothing is uncommitted (so one larger than the limit
    /// cannot be refused forever), and the leader's own entries (the no-op of a new
    /// term, configuration entries) are never refused nor counted. Reset when
    /// leadership changes. Default 64 MiB.
    pub max_uncommitted_bytes: u64,
    /// InstallSnapshot sends snapshots in chunks of this many bytes, one chunk in
    /// flight at a time; a lost chunk is resent from where the follower stopped.
    pub snapshot_chunk_bytes: u64,
    /// Whether the driver stages incoming snapshots itself: each chunk, checked in
    /// order against the snapshot's running checksum, comes out in
    /// [`crate::Ready::snapshot_chunks`] for the driver to write (to a file, say), and
    /// once the last one passed the checksum the driver reports whether the state
    /// machine accepts the snapshot with [`crate::RawNode::snapshot_received`]. Off (the
    /// default), the core assembles the snapshot in memory and hands it out whole in
    /// [`crate::Ready::snapshot`]. Either way a snapshot that fails its checksum is
    /// asked for again from the start.
    pub stream_snapshots: bool,
    /// Opt-in leader lease reads: a leader that has heard from a quorum within the
    /// last `read_lease_ticks` ticks serves reads without a heartbeat round. Requires
    /// `check_quorum` and must be shorter than `election_tick`. It assumes the nodes'
    /// tick rates drift apart by less than `election_tick - read_lease_ticks` ticks per
    /// lease: a paused process or a clock jump can break linearizability. `None`
    /// (the default) always uses ReadIndex.
    pub read_lease_ticks: Option<u64>,
    /// Opt-in quiescence for hosts that run many groups (multi-raft): a leader whose
    /// group is idle stops heartbeating, tells its followers to stop their election
    /// timers with a [`crate::MessageBody::Quiesce`], and both then do nothing on
    /// [`crate::RawNode::tick`] until something wakes them (see
    /// [`crate::RawNode::wake`] and `docs/raft-core.md`, "Quiescence"). The group is
    /// idle when the leader has persisted its whole log, committed all of it, every
    /// member matches its last index, nothing waits (reads, a transfer, a joint
    /// configuration), every member was heard from in the current check-quorum
    /// window, and all of that has held for [`QUIESCE_IDLE_TICKS`] ticks.
    ///
    /// The host must then detect dead peers itself: it exchanges one liveness beat
    /// per peer pair per tick for all its groups and calls [`crate::RawNode::wake`] on
    /// a quiesced group whose leader it has not heard from for an election timeout.
    /// Compatible with `read_lease_ticks`: a leader's lease ends when it quiesces and
    /// when it wakes, so its first read after waking takes a quorum round. Off by
    /// default; off, nothing changes.
    pub quiesce: bool,
    /// The highest index the application has already applied (when restarting a node
    /// whose state machine is durable). Entries after it are delivered again.
    pub applied: LogIndex,
    /// The seed of the node's random choices (election timeouts). Give each node a
    /// different seed; a simulation that fixes the seeds replays exactly.
    pub seed: u64,
    /// Switches that plant known bugs, for the simulator's self-test only (raft-sim
    /// shows that its checker catches each one): never set in production. All off by
    /// default.
    pub bugs: PlantedBugs,
}

impl Config {
    /// A configuration with sensible defaults: election after 10 ticks, heartbeats
    /// every tick, pre-vote and check-quorum on.
    pub fn new(id: impl Into<NodeId>) -> Self {
        Config {
            id: id.into(),
            group: 0,
            election_tick: 10,
            heartbeat_tick: 1,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_msg: 256,
            max_bytes_per_msg: 1 << 20,
            max_inflight_msgs: 64,
            max_inflight_bytes: 32 << 20,
            max_uncommitted_bytes: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            read_lease_ticks: None,
            quiesce: false,
            applied: 0,
            seed: 0,
            stream_snapshots: false,
            bugs: PlantedBugs::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.as_str().is_empty() {
            return Err(ConfigError::EmptyId);
        }
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election: self.election_tick,
                heartbeat: self.heartbeat_tick,
            });
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.max_inflight_bytes == 0 {
            return Err(ConfigError::Zero("max_inflight_bytes"));
        }
        if self.max_uncommitted_bytes == 0 {
            return Err(ConfigError::Zero("max_uncommitted_bytes"));
        }
        if self.max_entries_per_msg == 0 {
            return Err(ConfigError::ZeroEntriesPerMsg);
        }
        if self.max_entries_per_msg > crate::bounds::MAX_ENTRIES_PER_MESSAGE {
            return Err(ConfigError::TooManyEntriesPerMsg(self.max_entries_per_msg));
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError::ZeroSnapshotChunk);
        }
        if let Some(lease) = self.read_lease_ticks {
            if !self.check_quorum {
                return Err(ConfigError::LeaseNeedsCheckQuorum);
            }
            if lease >= self.election_tick {
                return Err(ConfigError::LeaseNotShorterThanElection {
                    lease,
                    election: self.election_tick,
                });
            }
        }
        Ok(())
    }
}
