//! # raft-sim
//!
//! easyraft's deterministic simulator: it runs [`raft_core`] clusters under hostile
//! networks, crashes and clients, and checks the safety properties of Raft after every
//! step. A seeded scenario, run and checked:
//!
//! ```
//! use raft_sim::{Scenario, Simulation};
//!
//! let scenario = Scenario::random(42, 3, 300);
//! let outcome = Simulation::new(&scenario, 0).unwrap().run();
//! assert!(outcome.violation.is_none(), "{scenario}\n{:?}", outcome.violation);
//! ```
//!
//! Many [`RawNode`](raft_core::RawNode)s with [`MemStorage`](raft_core::MemStorage) disks on
//! a simulated network, driven by one seeded RNG: no threads, no clocks, no hash
//! maps, so a seed replays a run event for event. A [`Scenario`] says how big the
//! cluster is, how its nodes are configured, how hostile the network is (drops,
//! delays, duplicates, reordering, symmetric and one-way partitions, an isolated
//! leader), how slow the nodes' disks are (each write completes some steps after its
//! Ready, in order, while the node goes on), how often nodes crash (losing the writes
//! not completed yet, also in the middle of a Ready) or pause, and how busy the clients are (proposals, ReadIndex
//! reads, leadership transfers, membership changes) and its application (snapshots
//! that compact the log). A [`Simulation`] runs it step by step (one step is
//! one tick) with the [`Checker`] watching every Ready of every node for the safety
//! properties of the Raft paper, then heals everything and checks liveness.
//!
//! To show that the checker catches what it should, a scenario can plant known bugs
//! in its nodes ([`Scenario::with_bugs_everywhere`], [`PlantedBugs`]): raft-core's
//! switches that each break one rule on purpose, carried by
//! [`Config::bugs`](raft_core::Config::bugs).
//!
//! The pieces, one idea per file:
//! - `network.rs`: [`Network`], the seeded message queue and its faults;
//! - `node.rs`, `cluster/`: [`SimCluster`] — the nodes and their disks, time and
//!   delivery (`mod.rs`), the Ready driver over [`ReadyDriver`](raft_core::ReadyDriver)
//!   and the disks' write queues (`driver.rs`), and what the outside world
//!   does to the nodes (`inputs.rs`);
//! - `checker/`, `shadow.rs`, `violation.rs`: [`Checker`], the safety properties over
//!   a shadow of each node's persisted log;
//! - `faults.rs`, `client.rs`: the fault injector and the clients (commands, reads,
//!   leadership transfers, membership changes);
//! - `scenario.rs`, `run.rs`: [`Scenario`] and [`Simulation`], the step loop and the
//!   liveness phase;
//! - `liveness.rs`: with [`Config::quiesce`](raft_core::Config::quiesce), the hosts'
//!   node-level liveness beats and the rules by which a host wakes its quiesced
//!   groups ([`LivenessStats`]), the model a multi-raft runtime copies;
//! - `trace.rs`: the recent events printed with a failure.

mod checker;
mod client;
mod cluster;
mod faults;
mod liveness;
mod network;
mod node;
mod run;
mod scenario;
mod shadow;
mod trace;
mod violation;

pub use checker::{Checker, CheckerStats};
pub use client::{Accepted, ClientRates};
pub use cluster::{ClusterStats, SimCluster};
pub use faults::{FaultRates, FaultStats};
pub use liveness::LivenessStats;
pub use network::{NetFaults, NetStats, Network, SendFate};
pub use node::CrashPoint;
pub use run::{Outcome, Simulation, Stats};
pub use scenario::{RaftKnobs, Scenario};
pub use shadow::Payload;
pub use trace::Trace;
pub use violation::{Property, Violation};

/// The switches that plant known bugs in a node (raft-core's, re-exported here).
pub use raft_core::PlantedBugs;

use raft_core::Rng;

/// The simulator's uses of the seeded RNG.
pub(crate) trait RngExt {
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u32) -> bool;
    /// A number in `[0, n)` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize;
}

impl RngExt for Rng {
    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.range(0, 1000) < u64::from(per_mille)
    }

    fn below(&mut self, n: usize) -> usize {
        self.range(0, n as u64) as usize
    }
}
