//! The fault injector: at each step of the fault phase it may start or heal a
//! partition (symmetric split, isolated leader, one-way cuts around the leader,
//! random one-way cuts, a bridge node between two halves), crash a node (between
//! inputs, or at its next write or vote so that what it had not persisted is lost)
//! and pause a node (a long GC pause: its messages wait, its clock stops).

use std::fmt;

use crate::cluster::SimCluster;
use crate::node::CrashPoint;
use crate::RngExt;

/// How often faults happen, per step, in parts per thousand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultRates {
    /// Chance to start a partition when the network is whole.
    pub partition_per_mille: u32,
    /// Chance to heal a partition.
    pub heal_per_mille: u32,
    /// Chance to crash a node.
    pub crash_per_mille: u32,
    /// Of the crashes, the share (‰) armed at the node's next write instead of now
    /// (half of them lose the whole write, half tear it: some entries persist).
    pub crash_mid_write_per_mille: u32,
    /// Of the crashes, the share (‰) armed at the node's next term or vote change.
    pub crash_at_vote_per_mille: u32,
    /// Of the crashes, the share (‰) that hit the leader (if there is one) rather
    /// than a node drawn at random.
    pub crash_leader_per_mille: u32,
    /// The longest downtime after a crash, in ticks (0 restarts at once).
    pub max_downtime: u64,
    /// Chance to pause a node.
    pub pause_per_mille: u32,
    /// The longest pause, in ticks.
    pub max_pause: u64,
}

impl fmt::Display for FaultRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition={}‰ heal={}‰ crash={}‰ (mid-write {}‰, at-vote {}‰, leader {}‰) down<={}t pause={}‰<={}t",
            self.partition_per_mille,
            self.heal_per_mille,
            self.crash_per_mille,
            self.crash_mid_write_per_mille,
            self.crash_at_vote_per_mille,
            self.crash_leader_per_mille,
            self.max_downtime,
            self.pause_per_mille,
            self.max_pause
        )
    }
}

/// Counters of injected faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Partitions started (of any shape).
    pub partitions: u64,
    /// Partitions healed.
    pub heals: u64,
    /// Crashes ordered (some armed for a later write).
    pub crashes_ordered: u64,
}

/// Injects this step's faults.
pub(crate) fn inject(c: &mut SimCluster, rates: &FaultRates, stats: &mut FaultStats) {
    let n = c.len();
    if c.network().is_partitioned() {
        if c.rng().chance(rates.heal_per_mille) {
            stats.heals += 1;
            c.network().heal();
            c.note(|| "HEAL all links".to_string());
        }
    } else if c.rng().chance(rates.partition_per_mille) {
        stats.partitions += 1;
        partition(c, n);
    }
    if c.rng().chance(rates.crash_per_mille) {
        let random = c.random_node();
        let i = match c.leader() {
            Some(l) if c.rng().chance(rates.crash_leader_per_mille) => l,
            _ => random,
        };
        if c.is_up(i) {
            stats.crashes_ordered += 1;
            let kind = c.rng().below(1000) as u32;
            let point = if kind < rates.crash_mid_write_per_mille {
                if c.rng().chance(500) {
                    CrashPoint::NextWrite
                } else {
                    CrashPoint::TornWrite
                }
            } else if kind < rates.crash_mid_write_per_mille + rates.crash_at_vote_per_mille {
                CrashPoint::NextVote
            } else {
                CrashPoint::Now
            };
            let downtime = c.rng().range(0, rates.max_downtime + 1);
            c.crash(i, point, downtime);
        }
    }
    if c.rng().chance(rates.pause_per_mille) {
        let i = c.rng().below(n);
        let ticks = c.rng().range(1, rates.max_pause + 1);
        c.pause(i, ticks);
    }
}

fn partition(c: &mut SimCluster, n: usize) {
    let leader = c.leader().unwrap_or_else(|| c.rng().below(n));
    match c.rng().below(5) {
        0 => {
            // A symmetric split into two non-empty sides.
            let mut side: Vec<usize> = (0..n).map(|_| c.rng().below(2)).collect();
            let first = side[0];
            if side.iter().all(|&s| s == first) {
                let k = c.rng().range(1, n as u64) as usize;
                side[k] = 1 - first;
            }
            c.network().partition(&side);
            c.note(|| format!("PARTITION sides {side:?}"));
        }
        1 => {
            c.network().isolate(leader);
            c.note(|| format!("ISOLATE n{}", leader + 1));
        }
        2 => {
            // The leader can send but hears nothing, or hears everything but cannot send.
            let deaf = c.rng().chance(500);
            for other in 0..n {
                if deaf {
                    c.network().cut_one_way(other, leader);
                } else {
                    c.network().cut_one_way(leader, other);
                }
            }
            c.note(|| {
                format!(
                    "ONE-WAY n{} {}",
                    leader + 1,
                    if deaf { "cannot hear" } else { "cannot speak" }
                )
            });
        }
        3 => {
            let k = c.rng().range(1, (n * 2) as u64);
            for _ in 0..k {
                let (a, b) = (c.rng().below(n), c.rng().below(n));
                c.network().cut_one_way(a, b);
            }
            let cuts = c.network().describe_cuts();
            c.note(|| format!("CUT {cuts}"));
        }
        _ => {
            // Two sides that cannot talk, and one bridge node that reaches both.
            let bridge = c.rng().below(n);
            let side: Vec<usize> = (0..n).map(|i| if i == bridge { 2 } else { i % 2 }).collect();
            for a in 0..n {
                for b in 0..n {
                    if side[a] != 2 && side[b] != 2 && side[a] != side[b] {
                        c.network().cut_one_way(a, b);
                    }
                }
            }
            c.note(|| format!("BRIDGE n{} between sides {side:?}", bridge + 1));
        }
    }
}
