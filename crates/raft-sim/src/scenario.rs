//! A scenario: everything that determines a simulation run — the seed, the cluster
//! size, the number of fault-phase steps, the nodes' configuration, the network's and
//! the fault injector's rates, the clients' load and any planted bugs. The same
//! scenario always produces the same run, event for event.

use std::fmt;

use raft_core::{Config, PlantedBugs};

use crate::client::ClientRates;
use crate::faults::FaultRates;
use crate::network::NetFaults;
use crate::RngExt;
use raft_core::Rng;

/// The protocol settings a scenario varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftKnobs {
    /// [`Config::election_tick`].
    pub election_tick: u64,
    /// [`Config::heartbeat_tick`].
    pub heartbeat_tick: u64,
    /// [`Config::pre_vote`].
    pub pre_vote: bool,
    /// [`Config::check_quorum`].
    pub check_quorum: bool,
    /// [`Config::max_entries_per_msg`].
    pub max_entries_per_msg: usize,
    /// [`Config::max_inflight_msgs`].
    pub max_inflight_msgs: usize,
    /// [`Config::snapshot_chunk_bytes`].
    pub snapshot_chunk_bytes: u64,
    /// [`Config::read_lease_ticks`] (only with check-quorum).
    pub read_lease_ticks: Option<u64>,
    /// [`Config::quiesce`]: idle groups quiesce, and the hosts' liveness beats wake
    /// them (`liveness.rs`). Never drawn by [`Scenario::random`]; tests turn it on.
    pub quiesce: bool,
}

impl fmt::Display for RaftKnobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "election={}t heartbeat={}t pre_vote={} check_quorum={} entries/msg<={} inflight<={} \
             snapshot_chunk={}B lease={:?} quiesce={}",
            self.election_tick,
            self.heartbeat_tick,
            self.pre_vote,
            self.check_quorum,
            self.max_entries_per_msg,
            self.max_inflight_msgs,
            self.snapshot_chunk_bytes,
            self.read_lease_ticks,
            self.quiesce
        )
    }
}

/// One simulation run, fully determined by its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Drives every random choice of the run.
    pub seed: u64,
    /// The cluster size (3, 5 or 7): the voters of the initial configuration.
    pub nodes: usize,
    /// Nodes that start outside the cluster, for membership changes to add.
    pub spares: usize,
    /// Steps (ticks) of the fault phase.
    pub steps: u64,
    /// The nodes' protocol settings.
    pub raft: RaftKnobs,
    /// Per-message faults during the fault phase.
    pub net: NetFaults,
    /// Partitions, crashes and pauses during the fault phase.
    pub faults: FaultRates,
    /// The clients' load.
    pub clients: ClientRates,
    /// Chance per step (‰) that a random node's application snapshots its state
    /// machine and compacts its log.
    pub compact_per_mille: u32,
    /// The longest a node's disk takes to complete a write, in steps: each write
    /// completes after a delay drawn from `0..=max_persist_delay`, in order; the node
    /// goes on meanwhile, and a crash loses what is outstanding.
    pub max_persist_delay: u64,
    /// Bugs planted in the nodes of `buggy_nodes`.
    pub bugs: PlantedBugs,
    /// Which nodes carry `bugs`.
    pub buggy_nodes: Vec<usize>,
    /// After the fault phase, heal everything and check liveness: a leader within
    /// this many ticks, and then every new proposal applied everywhere within as many.
    pub liveness_ticks: Option<u64>,
}

impl Scenario {
    /// The default scenario distribution: every knob drawn from `seed`, `steps`
    /// fault-phase steps, then the liveness phase.
    pub fn random(seed: u64, nodes: usize, steps: u64) -> Self {
        // A stream of its own, so the run's RNG (seeded with `seed`) is independent.
        let mut r = Rng::new(seed ^ 0x5ce7_a410_0f5e_ed00);
        let election_tick = r.range(6, 15);
        let heartbeat_tick = r.range(1, (election_tick / 3).min(3) + 1);
        let mut raft = RaftKnobs {
            election_tick,
            heartbeat_tick,
            pre_vote: r.chance(700),
            check_quorum: r.chance(700),
            max_entries_per_msg: [1, 2, 3, 8, 64][r.below(5)],
            max_inflight_msgs: r.range(1, 9) as usize,
            snapshot_chunk_bytes: [8, 40, 1 << 20][r.below(3)],
            read_lease_ticks: None,
            quiesce: false,
        };
        let net = NetFaults {
            drop_per_mille: [0, 5, 20, 50, 150][r.below(5)],
            dup_per_mille: [0, 10, 50][r.below(3)],
            delay_per_mille: r.range(0, 700) as u32,
            max_delay: r.range(1, 5),
        };
        let faults = FaultRates {
            partition_per_mille: r.range(0, 30) as u32,
            heal_per_mille: r.range(10, 80) as u32,
            crash_per_mille: r.range(0, 15) as u32,
            crash_mid_write_per_mille: 300,
            crash_at_vote_per_mille: 200,
            crash_leader_per_mille: 300,
            max_downtime: r.range(0, 50),
            pause_per_mille: r.range(0, 8) as u32,
            max_pause: r.range(1, 30),
        };
        let clients = ClientRates {
            propose_per_mille: r.range(150, 900) as u32,
            max_batch: r.range(1, 4),
            read_per_mille: r.range(50, 500) as u32,
            transfer_per_mille: r.range(0, 8) as u32,
            membership_per_mille: [0, 0, 5, 20][r.below(4)],
        };
        let spares = if clients.membership_per_mille > 0 {
            r.below(3)
        } else {
            0
        };
        // Lease reads assume the nodes' clocks run at the same rate: never with pauses.
        if raft.check_quorum && faults.pause_per_mille == 0 && r.chance(500) {
            raft.read_lease_ticks = Some(r.range(1, election_tick));
        }
        let compact_per_mille = [0, 5, 30, 100][r.below(4)];
        // Disks faster than half an election timeout, as deployments are (a vote
        // counts once durable: slower disks would leave few elections finishing).
        let max_persist_delay = [0, 1, 2, 4, 8][r.below(5)].min(election_tick / 2);
        Scenario {
            seed,
            nodes,
            spares,
            steps,
            raft,
            net,
            faults,
            clients,
            compact_per_mille,
            max_persist_delay,
            bugs: PlantedBugs::default(),
            buggy_nodes: Vec::new(),
            liveness_ticks: Some(40 * election_tick),
        }
    }

    /// Plants `bugs` in every node.
    pub fn with_bugs_everywhere(mut self, bugs: PlantedBugs) -> Self {
        self.bugs = bugs;
        self.buggy_nodes = (0..self.nodes).collect();
        self
    }

    /// The configuration of node `i` (its id and seed are set by the cluster).
    pub fn config(&self, i: usize) -> Config {
        let mut c = Config::new("unset");
        c.election_tick = self.raft.election_tick;
        c.heartbeat_tick = self.raft.heartbeat_tick;
        c.pre_vote = self.raft.pre_vote;
        c.check_quorum = self.raft.check_quorum;
        c.max_entries_per_msg = self.raft.max_entries_per_msg;
        c.max_inflight_msgs = self.raft.max_inflight_msgs;
        c.snapshot_chunk_bytes = self.raft.snapshot_chunk_bytes;
        c.read_lease_ticks = self.raft.read_lease_ticks;
        c.quiesce = self.raft.quiesce;
        if self.buggy_nodes.contains(&i) {
            c.bugs = self.bugs;
        }
        c
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed={} nodes={}+{} spare steps={} liveness={:?}",
            self.seed, self.nodes, self.spares, self.steps, self.liveness_ticks
        )?;
        writeln!(f, "  raft:    {}", self.raft)?;
        writeln!(f, "  net:     {}", self.net)?;
        writeln!(f, "  faults:  {}", self.faults)?;
        writeln!(f, "  clients: {}", self.clients)?;
        write!(
            f,
            "  compaction: {}‰ per step; writes durable within {} steps",
            self.compact_per_mille, self.max_persist_delay
        )?;
        if !self.buggy_nodes.is_empty() {
            write!(f, "\n  bugs:    {:?} in nodes {:?}", self.bugs, self.buggy_nodes)?;
        }
        Ok(())
    }
}
