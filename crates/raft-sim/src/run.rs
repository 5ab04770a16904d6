//! Running a scenario: the step loop of the fault phase (faults, clients, one tick,
//! the checker after every input), then the liveness phase (heal, restart everyone,
//! stop losing messages; a leader must be elected and new proposals applied
//! everywhere within the scenario's bound).

use std::fmt;

use raft_core::LogIndex;

use crate::checker::CheckerStats;
use crate::client::{Accepted, Clients};
use crate::cluster::{ClusterStats, SimCluster};
use crate::faults::{self, FaultStats};
use crate::liveness::LivenessStats;
use crate::network::{NetFaults, NetStats};
use crate::scenario::Scenario;
use crate::shadow::Payload;
use crate::violation::{Property, Violation};
use crate::RngExt;

/// What one or many runs did (sums, and maxima where named so).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Scenarios run.
    pub scenarios: u64,
    /// Steps (ticks) simulated, both phases.
    pub steps: u64,
    /// Crashes, restarts, pauses, client calls.
    pub cluster: ClusterStats,
    /// Messages sent, delivered, dropped, cut, duplicated.
    pub net: NetStats,
    /// Elections, commits, applies, reads checked.
    pub checker: CheckerStats,
    /// Partitions and heals.
    pub faults: FaultStats,
    /// The most ticks it took to elect a leader after healing.
    pub max_election_ticks: u64,
    /// The most ticks it took to apply new proposals everywhere after that.
    pub max_commit_ticks: u64,
    /// Commands accepted during the fault phase that ended up in the final log.
    pub pending_kept: u64,
    /// Commands accepted during the fault phase that a later leader overwrote.
    pub pending_lost: u64,
    /// Scenarios in which at least one membership change was made.
    pub scenarios_with_membership_changes: u64,
    /// Scenarios in which at least one snapshot was installed on a follower.
    pub scenarios_with_snapshot_installs: u64,
    /// With quiescing nodes: the hosts' liveness beats and wakes, and the time spent
    /// quiesced.
    pub liveness: LivenessStats,
}

impl Stats {
    /// Adds another run's figures to these.
    pub fn merge(&mut self, o: &Stats) {
        let (c, oc) = (&mut self.cluster, &o.cluster);
        c.crashes += oc.crashes;
        c.mid_ready_crashes += oc.mid_ready_crashes;
        c.restarts += oc.restarts;
        c.pauses += oc.pauses;
        c.proposals_accepted += oc.proposals_accepted;
        c.proposals_refused += oc.proposals_refused;
        c.reads_started += oc.reads_started;
        c.reads_served += oc.reads_served;
        c.transfers += oc.transfers;
        c.compactions += oc.compactions;
        c.snapshots_installed += oc.snapshots_installed;
        c.membership_changes += oc.membership_changes;
        c.late_writes += oc.late_writes;
        c.writes_lost += oc.writes_lost;
        let (n, on) = (&mut self.net, &o.net);
        n.sent += on.sent;
        n.delivered += on.delivered;
        n.dropped += on.dropped;
        n.cut += on.cut;
        n.duplicated += on.duplicated;
        let (k, ok) = (&mut self.checker, &o.checker);
        k.elections += ok.elections;
        k.committed += ok.committed;
        k.applied += ok.applied;
        k.reads_checked += ok.reads_checked;
        k.snapshots_checked += ok.snapshots_checked;
        self.faults.partitions += o.faults.partitions;
        self.faults.heals += o.faults.heals;
        self.faults.crashes_ordered += o.faults.crashes_ordered;
        self.scenarios += o.scenarios;
        self.steps += o.steps;
        self.max_election_ticks = self.max_election_ticks.max(o.max_election_ticks);
        self.max_commit_ticks = self.max_commit_ticks.max(o.max_commit_ticks);
        self.pending_kept += o.pending_kept;
        self.pending_lost += o.pending_lost;
        self.scenarios_with_membership_changes += o.scenarios_with_membership_changes;
        self.scenarios_with_snapshot_installs += o.scenarios_with_snapshot_installs;
        self.liveness.merge(&o.liveness);
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, n, k) = (&self.cluster, &self.net, &self.checker);
        write!(
            f,
            "{} scenarios, {} steps; {} elections, {} crashes ({} mid-Ready), {} restarts, {} pauses, \
             {} partitions; {} writes completed late, {} lost in crashes; {} commands accepted, {} entries committed, {} applies; {} reads started, \
             {} checked, {} served; {} transfers; {} compactions, {} snapshots installed; {} membership changes; messages: {} sent, {} delivered, {} dropped, {} cut, \
             {} duplicated; after healing: leader within {} ticks, proposals applied within {} more (max); \
             fault-phase commands kept {} / overwritten {}; scenarios with membership changes {} of {}, \
             with snapshots installed {} of {}",
            self.scenarios,
            self.steps,
            k.elections,
            c.crashes,
            c.mid_ready_crashes,
            c.restarts,
            c.pauses,
            self.faults.partitions,
            c.late_writes,
            c.writes_lost,
            c.proposals_accepted,
            k.committed,
            k.applied,
            c.reads_started,
            k.reads_checked,
            c.reads_served,
            c.transfers,
            c.compactions,
            c.snapshots_installed,
            c.membership_changes,
            n.sent,
            n.delivered,
            n.dropped,
            n.cut,
            n.duplicated,
            self.max_election_ticks,
            self.max_commit_ticks,
            self.pending_kept,
            self.pending_lost,
            self.scenarios_with_membership_changes,
            self.scenarios,
            self.scenarios_with_snapshot_installs,
            self.scenarios
        )?;
        let l = &self.liveness;
        if l.beats_sent > 0 {
            write!(
                f,
                "; quiescence: {} node-ticks quiesced, {} follower and {} leader wakes by the hosts, \
                 {} liveness beats sent ({} delivered)",
                l.quiesced_node_ticks, l.follower_wakes, l.leader_wakes, l.beats_sent, l.beats_delivered
            )?;
        }
        Ok(())
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// What the run did.
    pub stats: Stats,
    /// The first violation found, if any (the run stops there).
    pub violation: Option<Violation>,
}

/// A scenario being run. Keep it after a failure (or a panic) to read its trace.
pub struct Simulation {
    scenario: Scenario,
    cluster: SimCluster,
    clients: Clients,
    faults: FaultStats,
    election_ticks: u64,
    commit_ticks: u64,
    pending: (u64, u64),
}

impl Simulation {
    /// Sets up `scenario`; `trace_cap` recent events are kept for the report (0: none).
    pub fn new(scenario: &Scenario, trace_cap: usize) -> raft_core::Result<Self> {
        let mut cluster = SimCluster::new(
            scenario.nodes + scenario.spares,
            scenario.nodes,
            scenario.seed,
            |i| scenario.config(i),
            scenario.net,
            trace_cap,
        )?;
        cluster.set_max_persist_delay(scenario.max_persist_delay);
        Ok(Simulation {
            scenario: scenario.clone(),
            cluster,
            clients: Clients::default(),
            faults: FaultStats::default(),
            election_ticks: 0,
            commit_ticks: 0,
            pending: (0, 0),
        })
    }

    /// Runs the scenario to its end or to the first violation.
    pub fn run(&mut self) -> Outcome {
        let violation = self.run_phases().err();
        Outcome {
            stats: self.stats(),
            violation,
        }
    }

    /// The cluster (nodes, network, checker, trace).
    pub fn cluster(&self) -> &SimCluster {
        &self.cluster
    }

    /// What the run did so far.
    pub fn stats(&self) -> Stats {
        Stats {
            scenarios: 1,
            steps: self.cluster.now(),
            cluster: self.cluster.stats(),
            net: self.cluster.network_stats(),
            checker: self.cluster.checker().stats(),
            faults: self.faults,
            max_election_ticks: self.election_ticks,
            max_commit_ticks: self.commit_ticks,
            pending_kept: self.pending.0,
            pending_lost: self.pending.1,
            scenarios_with_membership_changes: u64::from(self.cluster.stats().membership_changes > 0),
            scenarios_with_snapshot_installs: u64::from(self.cluster.stats().snapshots_installed > 0),
            liveness: self.cluster.liveness_stats().unwrap_or_default(),
        }
    }

    /// The state of every node and the recent events, for a failure report.
    pub fn report(&self) -> String {
        let mut s = String::from("nodes:\n");
        for line in self.cluster.describe() {
            s.push_str(&format!("  {line}\n"));
        }
        s.push_str(&format!("network cuts: [{}]\n", self.cluster.describe_cuts()));
        if self.cluster.trace().enabled() {
            s.push_str("recent events (oldest first):\n");
            for line in self.cluster.trace().lines() {
                s.push_str(&format!("  {line}\n"));
            }
        }
        s
    }

    fn run_phases(&mut self) -> Result<(), Violation> {
        let sc = &self.scenario;
        let (faults, clients) = (sc.faults, sc.clients);
        let compact = sc.compact_per_mille;
        for _ in 0..sc.steps {
            faults::inject(&mut self.cluster, &faults, &mut self.faults);
            self.clients.step(&mut self.cluster, &clients)?;
            if self.cluster.rng().chance(compact) {
                let i = self.cluster.random_node();
                let pad = self.cluster.rng().below(97);
                self.cluster.compact(i, pad)?;
            }
            self.cluster.tick()?;
        }
        if let Some(bound) = self.scenario.liveness_ticks {
            self.liveness(bound)?;
        }
        self.cluster.full_check()
    }

    fn fail(&self, detail: String) -> Violation {
        Violation {
            property: Property::Liveness,
            step: self.cluster.now(),
            detail,
        }
    }

    /// Heals everything, then: a leader within `bound` ticks; new commands applied on
    /// every node within `bound` more; every node's log equal to the leader's.
    fn liveness(&mut self, bound: u64) -> Result<(), Violation> {
        let c = &mut self.cluster;
        c.note(|| "LIVENESS PHASE: heal, restart all, no more drops".into());
        c.network().heal();
        let f = c.network().faults();
        c.network().set_faults(NetFaults {
            drop_per_mille: 0,
            max_delay: f.max_delay.min(2),
            ..f
        });
        // Disks as slow as the network: a disk slower than an election timeout
        // (votes count once durable) would keep every election from finishing.
        c.set_max_persist_delay(self.scenario.max_persist_delay.min(2));
        c.restart_all()?;
        let healed_at = c.now();
        let leader = loop {
            self.retire_removed()?;
            if let Some((l, _)) = self.stable_leader() {
                break l;
            }
            if self.cluster.now() - healed_at >= bound {
                return Err(self.fail(format!("no leader followed by all within {bound} ticks of healing")));
            }
            self.cluster.tick()?;
        };
        self.election_ticks = self.cluster.now() - healed_at;
        // Clients retry: a batch the leader accepted but lost with its leadership
        // (legitimately overwritten) is proposed again at the next stable leader.
        let started = self.cluster.now();
        let mut deadline = started + bound;
        let mut fresh: Vec<Accepted> = Vec::new();
        let mut leader = leader;
        let mut members: Vec<usize> = (0..self.cluster.len()).collect();
        loop {
            self.retire_removed()?;
            if let Some((l, m)) = self.stable_leader() {
                (leader, members) = (l, m);
            }
            let checker = self.cluster.checker();
            let lost = fresh.iter().any(|a| {
                checker
                    .committed_at(a.index)
                    .is_some_and(|c| c != (a.term, Payload::Command(a.id)))
            });
            let term_moved = fresh.first().is_some_and(|a| {
                self.stable_leader()
                    .and_then(|(l, _)| self.cluster.node(l))
                    .is_some_and(|r| r.term() != a.term)
            });
            if lost || (term_moved && !self.leader_holds(&fresh)) {
                self.cluster
                    .note(|| format!("liveness: batch {fresh:?} was lost with its leader; retrying"));
                fresh.clear();
            }
            if fresh.is_empty() {
                if let Some((l, _)) = self.stable_leader() {
                    self.clients.point_at(l);
                    fresh = self.clients.propose(&mut self.cluster, 3)?;
                    if let Some(target) = fresh.last().map(|a| a.index) {
                        // A backlog left by a slow configuration (one entry per message,
                        // one message in flight) drains at one entry per round trip.
                        let behind = members.iter().map(|&i| self.cluster.applied(i)).min().unwrap_or(0);
                        let round_trip = 2 * self.cluster.network().faults().max_delay + 2;
                        deadline = deadline.max(self.cluster.now() + bound + (target - behind) * round_trip);
                    }
                }
            }
            let target = fresh.last().map(|a| a.index);
            if let Some(target) = target {
                let ours = self.cluster.checker().committed_at(target).map(|c| c.0) == Some(fresh[0].term);
                if ours && members.iter().all(|&i| self.cluster.applied(i) >= target) {
                    break;
                }
            }
            if self.cluster.now() >= deadline {
                let applied: Vec<(usize, LogIndex)> = members.iter().map(|&i| (i, self.cluster.applied(i))).collect();
                return Err(self.fail(format!(
                    "proposals {fresh:?} not applied on every member by step {deadline} (applied: {applied:?})"
                )));
            }
            self.cluster.tick()?;
        }
        self.commit_ticks = self.cluster.now() - started;
        let target = fresh.last().map_or(0, |a| a.index);
        let checker = self.cluster.checker();
        for a in &fresh {
            if checker.committed_at(a.index) != Some((a.term, Payload::Command(a.id))) {
                return Err(self.fail(format!("command {} proposed after healing was lost: {a:?}", a.id)));
            }
        }
        let kept = self
            .clients
            .accepted
            .iter()
            .filter(|a| checker.committed_at(a.index) == Some((a.term, Payload::Command(a.id))))
            .count() as u64;
        self.pending = (kept - fresh.len() as u64, self.clients.accepted.len() as u64 - kept);
        for &i in &members {
            if !checker.logs_agree(i, leader, target) {
                return Err(self.fail(format!(
                    "node {i}'s log differs from leader {leader}'s up to {target} after healing"
                )));
            }
        }
        Ok(())
    }

    /// Takes out of service the nodes outside the latest configuration (that of the
    /// most up-to-date log), as an operator would once they are removed: one that
    /// never learned of its removal keeps campaigning with its old configuration, and
    /// without check-quorum nothing stops it from deposing leader after leader.
    /// Brings back a node that is in it again.
    fn retire_removed(&mut self) -> Result<(), Violation> {
        let c = &self.cluster;
        let newest = (0..c.len())
            .filter_map(|i| {
                c.node(i).map(|r| {
                    (
                        r.log_entry(r.log_last_index()).map_or(0, |e| e.term),
                        r.log_last_index(),
                        i,
                    )
                })
            })
            .max();
        let Some(members) = newest.and_then(|(_, _, i)| c.membership_of(i)).map(|m| m.members()) else {
            return Ok(());
        };
        for i in 0..self.cluster.len() {
            if members.contains(self.cluster.id(i)) {
                self.cluster.restart_now(i)?;
            } else {
                self.cluster.decommission(i);
            }
        }
        Ok(())
    }

    /// Whether the stable leader's log holds every command of `batch`.
    fn leader_holds(&self, batch: &[Accepted]) -> bool {
        let Some(raw) = self.stable_leader().and_then(|(l, _)| self.cluster.node(l)) else {
            return false;
        };
        batch.iter().all(|a| {
            raw.log_entry(a.index)
                .is_some_and(|e| e.term == a.term && Payload::of(&e) == Payload::Command(a.id))
        })
    }

    /// A running leader that every member of its configuration is running under, in
    /// its term; with those members.
    fn stable_leader(&self) -> Option<(usize, Vec<usize>)> {
        let c = &self.cluster;
        let l = c.leader()?;
        let raw = c.node(l)?;
        let (term, id) = (raw.term(), raw.id().clone());
        let members: Vec<usize> = raw
            .status()
            .membership
            .members()
            .iter()
            .filter_map(|m| c.index_of(m))
            .collect();
        members
            .iter()
            .all(|&i| c.is_running(i) && c.node(i).is_some_and(|r| r.term() == term && r.leader() == Some(&id)))
            .then_some((l, members))
    }
}
