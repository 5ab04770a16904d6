//! Running a scenario: the step loop of the fault phase (faults, clients, one tick,
//! the checker after every input), then the liveness phase (heal, restart everyone,
//! stop losing messages; a leader must be elected and new proposals applied
//! everywhere within the scenario's bound).

use std::fmt;

use crate::sim::checker::{CheckerStats, Payload, Property, Violation};
use crate::sim::client::{Accepted, Clients};
use crate::sim::cluster::{ClusterStats, SimCluster};
use crate::sim::faults::{self, FaultStats};
use crate::sim::network::{NetFaults, NetStats};
use crate::sim::scenario::Scenario;
use crate::types::LogIndex;

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
        self.faults.partitions += o.faults.partitions;
        self.faults.heals += o.faults.heals;
        self.faults.crashes_ordered += o.faults.crashes_ordered;
        self.scenarios += o.scenarios;
        self.steps += o.steps;
        self.max_election_ticks = self.max_election_ticks.max(o.max_election_ticks);
        self.max_commit_ticks = self.max_commit_ticks.max(o.max_commit_ticks);
        self.pending_kept += o.pending_kept;
        self.pending_lost += o.pending_lost;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, n, k) = (&self.cluster, &self.net, &self.checker);
        write!(
            f,
            "{} scenarios, {} steps; {} elections, {} crashes ({} mid-Ready), {} restarts, {} pauses, \
             {} partitions; {} commands accepted, {} entries committed, {} applies; {} reads started, \
             {} checked, {} served; {} transfers; messages: {} sent, {} delivered, {} dropped, {} cut, \
             {} duplicated; after healing: leader within {} ticks, proposals applied within {} more (max); \
             fault-phase commands kept {} / overwritten {}",
            self.scenarios,
            self.steps,
            k.elections,
            c.crashes,
            c.mid_ready_crashes,
            c.restarts,
            c.pauses,
            self.faults.partitions,
            c.proposals_accepted,
            k.committed,
            k.applied,
            c.reads_started,
            k.reads_checked,
            c.reads_served,
            c.transfers,
            n.sent,
            n.delivered,
            n.dropped,
            n.cut,
            n.duplicated,
            self.max_election_ticks,
            self.max_commit_ticks,
            self.pending_kept,
            self.pending_lost
        )
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
    pub fn new(scenario: &Scenario, trace_cap: usize) -> crate::Result<Self> {
        let cluster = SimCluster::new(
            scenario.nodes,
            scenario.seed,
            |i| scenario.config(i),
            scenario.net,
            trace_cap,
        )?;
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
        for _ in 0..sc.steps {
            faults::inject(&mut self.cluster, &faults, &mut self.faults);
            self.clients.step(&mut self.cluster, &clients)?;
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
        c.restart_all()?;
        let healed_at = c.now();
        let leader = loop {
            if let Some(l) = self.stable_leader() {
                break l;
            }
            if self.cluster.now() - healed_at >= bound {
                return Err(self.fail(format!("no leader followed by all within {bound} ticks of healing")));
            }
            self.cluster.tick()?;
        };
        self.election_ticks = self.cluster.now() - healed_at;
        let started = self.cluster.now();
        let mut fresh: Vec<Accepted> = Vec::new();
        while fresh.is_empty() {
            let l = self.stable_leader().unwrap_or(leader);
            self.clients.point_at(l);
            fresh = self.clients.propose(&mut self.cluster, 3)?;
            if fresh.is_empty() {
                if self.cluster.now() - started >= bound {
                    return Err(self.fail(format!("the leader refused proposals for {bound} ticks after healing")));
                }
                self.cluster.tick()?;
            }
        }
        let target = fresh.iter().map(|a| a.index).max().unwrap_or(0);
        // The backlog a slow configuration (one entry per message, one message in
        // flight) left behind drains at one entry per round trip at worst.
        let behind = (0..self.cluster.len())
            .map(|i| self.cluster.applied(i))
            .min()
            .unwrap_or(0);
        let round_trip = 2 * self.cluster.network().faults().max_delay + 2;
        let bound = bound + (target - behind) * round_trip;
        while (0..self.cluster.len()).any(|i| self.cluster.applied(i) < target) {
            if self.cluster.now() - started >= bound {
                let applied: Vec<LogIndex> = (0..self.cluster.len()).map(|i| self.cluster.applied(i)).collect();
                return Err(self.fail(format!(
                    "proposals up to index {target} not applied everywhere within {bound} ticks (applied: {applied:?})"
                )));
            }
            self.cluster.tick()?;
        }
        self.commit_ticks = self.cluster.now() - started;
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
        let reference = checker.log_of(leader);
        for i in 0..self.cluster.len() {
            let log = checker.log_of(i);
            let n = log.len().min(reference.len()).min(target as usize);
            if log[..n] != reference[..n] || log.len() < target as usize {
                return Err(self.fail(format!("node {i}'s log differs from leader {leader}'s after healing")));
            }
        }
        Ok(())
    }

    /// A running leader that every node is running under, in its term.
    fn stable_leader(&self) -> Option<usize> {
        let c = &self.cluster;
        let l = c.leader()?;
        let (term, id) = c.node(l).map(|r| (r.term(), r.id().clone()))?;
        (0..c.len())
            .all(|i| c.is_running(i) && c.node(i).is_some_and(|r| r.term() == term && r.leader() == Some(&id)))
            .then_some(l)
    }
}
