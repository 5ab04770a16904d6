//! What a chaos run is asked for ([`ChaosOptions`]) and what it found ([`ChaosReport`]).

use std::path::PathBuf;
use std::time::Duration;

use easyraft_linearizability::{Op, Outcome, Verdict};

use super::faults::{Fault, FaultEvent};

/// What `cargo xtask chaos` runs.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Cluster size (3 or 5).
    pub nodes: usize,
    /// How long faults are injected.
    pub duration: Duration,
    /// Concurrent clients.
    pub clients: usize,
    /// How many keys the clients share (few, so ops conflict).
    pub keys: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// The faults to inject.
    pub faults: Vec<Fault>,
    /// The program to run as `PROGRAM chaos-node ...` (the xtask binary).
    pub exe: PathBuf,
    /// Deliberately unsafe: the clients' gets ask for stale local reads
    /// (`kv_get` with `"stale": true`), so the checker must reject the history. A
    /// check of the checker against real processes. The final reads stay
    /// linearizable.
    pub stale_reads: bool,
}

impl ChaosOptions {
    /// 3 nodes, 30 s, 8 clients on 5 keys, every fault, this very program as the nodes.
    pub fn new(seed: u64) -> std::io::Result<Self> {
        Ok(ChaosOptions {
            nodes: 3,
            duration: Duration::from_secs(30),
            clients: 8,
            keys: 5,
            seed,
            faults: Fault::ALL.to_vec(),
            exe: std::env::current_exe()?,
            stale_reads: false,
        })
    }
}

/// What a chaos run found.
#[derive(Debug)]
pub struct ChaosReport {
    /// Whether the history is linearizable and no acknowledged write was lost.
    pub passed: bool,
    /// Every op the clients made, and the final reads.
    pub history: Vec<Op>,
    /// The faults injected.
    pub faults: Vec<FaultEvent>,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// How long the checker took.
    pub check_time: Duration,
    /// What went wrong outside the history: faults' anomalies (a node that kept
    /// running on a failed disk, a membership change that did not complete), members
    /// that did not catch up with the leader at the end.
    pub anomalies: Vec<String>,
}

impl ChaosReport {
    /// How many faults of `kind` happened.
    pub fn count(&self, kind: Fault) -> usize {
        self.faults.iter().filter(|f| f.fault == kind).count()
    }

    /// How many ops were answered.
    pub fn ok_ops(&self) -> usize {
        self.history
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok { .. }))
            .count()
    }
}
