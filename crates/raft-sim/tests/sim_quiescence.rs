//! Quiescence (`Config::quiesce`) under the simulator, with the hosts' node-level
//! liveness beats of `raft-sim`'s `liveness.rs`: the safety campaign with quiescing
//! nodes and bursty clients (so groups go idle between bursts), and scripted runs
//! showing that a quiet cluster sends no Raft message at all, that the hosts' beats
//! get a new leader elected when a quiesced leader dies or is cut off, that inputs
//! wake a quiesced leader, and that a restarted follower rejoins without an election.
//! `EASYRAFT_SIM_CASES` sets the campaign's total (default 400).

mod sim_common;

use raft_core::{Config, Role};
use raft_sim::{CrashPoint, NetFaults, Scenario, SimCluster};
use sim_common::{campaign, cases, replay_command, steps, RunResult};

const DEFAULT_CASES: u64 = 400;
const ELECTION_TICK: u64 = 10;

/// A random scenario with quiescing nodes and clients that come in bursts: an
/// eighth of the usual rates, so the group is often idle long enough to quiesce.
fn quiesce_scenario(seed: u64, nodes: usize) -> Scenario {
    let mut s = Scenario::random(seed, nodes, steps());
    s.raft.quiesce = true;
    s.clients.propose_per_mille /= 8;
    s.clients.read_per_mille /= 8;
    s
}

/// The same with lease reads on (and the faults leases are meant to survive, as in
/// `sim_safety`'s lease campaign).
fn quiesce_lease_scenario(seed: u64) -> Scenario {
    let mut s = quiesce_scenario(seed, [3, 5][(seed % 2) as usize]);
    s.raft.check_quorum = true;
    s.raft.read_lease_ticks = Some(1 + seed % (s.raft.election_tick - 1));
    s.faults.pause_per_mille = 0;
    s.faults.crash_per_mille = s.faults.crash_per_mille.max(20);
    s.faults.max_downtime = s.faults.max_downtime.min(3);
    s.clients.read_per_mille = s.clients.read_per_mille.max(60);
    s
}

fn quiesce_campaign(name: &str, shares: u64, make: impl Fn(u64) -> Scenario) {
    let totals = campaign(name, cases(DEFAULT_CASES, shares), make, |s| {
        replay_command("sim_quiescence", "replay", s, "")
    });
    // The campaign exercised quiescence at all: nodes were quiesced, and hosts woke
    // groups whose leader went silent.
    assert!(
        totals.liveness.quiesced_node_ticks > 0,
        "{name}: nothing ever quiesced: {totals}"
    );
    assert!(
        totals.liveness.follower_wakes > 0,
        "{name}: no host ever woke a follower: {totals}"
    );
}

#[test]
fn three_quiescing_nodes_stay_safe_and_live_under_faults() {
    quiesce_campaign("sim_quiescence 3 nodes", 3, |seed| quiesce_scenario(seed, 3));
}

#[test]
fn five_quiescing_nodes_stay_safe_and_live_under_faults() {
    quiesce_campaign("sim_quiescence 5 nodes", 3, |seed| quiesce_scenario(seed, 5));
}

#[test]
fn lease_reads_stay_linearizable_with_quiescence() {
    quiesce_campaign("sim_quiescence lease reads", 3, quiesce_lease_scenario);
}

/// Replays one scenario: `EASYRAFT_SIM_SEED=.. EASYRAFT_SIM_NODES=..`; without them,
/// one fixed seed must run clean.
#[test]
fn replay() {
    let (seed, nodes) = match std::env::var("EASYRAFT_SIM_SEED") {
        Ok(s) => (
            s.parse().expect("EASYRAFT_SIM_SEED is a u64"),
            std::env::var("EASYRAFT_SIM_NODES").map_or(3, |n| n.parse().expect("EASYRAFT_SIM_NODES")),
        ),
        Err(_) => (0x5eed, 3),
    };
    let s = quiesce_scenario(seed, nodes);
    match sim_common::run(&s, &replay_command("sim_quiescence", "replay", &s, "")) {
        RunResult::Clean(stats) => eprintln!("clean: {stats}"),
        RunResult::Failed { report, .. } => panic!("{report}"),
    }
}

fn config() -> Config {
    let mut c = Config::new("unset");
    c.election_tick = ELECTION_TICK;
    c.heartbeat_tick = 1;
    c.pre_vote = true;
    c.check_quorum = true;
    c.quiesce = true;
    c
}

fn cluster(seed: u64) -> SimCluster {
    SimCluster::new(3, 3, seed, |_| config(), NetFaults::none(), 500).unwrap()
}

fn trace(c: &SimCluster) -> String {
    let mut s = c.describe().join("\n");
    s.push('\n');
    s.push_str(&c.trace().lines().collect::<Vec<_>>().join("\n"));
    s
}

/// Ticks until `done`, at most `bound` ticks; returns the ticks it took.
fn tick_until(c: &mut SimCluster, bound: u64, what: &str, done: impl Fn(&SimCluster) -> bool) -> u64 {
    let start = c.now();
    while !done(c) {
        assert!(c.now() - start < bound, "{what} not within {bound} ticks\n{}", trace(c));
        if let Err(v) = c.tick() {
            panic!("{v}\n{}", trace(c));
        }
    }
    c.now() - start
}

fn all_quiesced(c: &SimCluster) -> bool {
    (0..c.len()).all(|i| c.is_quiesced(i))
}

/// A cluster with a leader, some writes applied everywhere, then quiesced.
fn quiet_cluster(seed: u64) -> (SimCluster, usize) {
    let mut c = cluster(seed);
    tick_until(&mut c, 200, "a leader", |c| c.leader().is_some());
    let leader = c.leader().unwrap();
    for id in 1..=3 {
        assert!(c.propose(leader, &[id]).unwrap().is_ok());
    }
    tick_until(&mut c, 50, "the writes applied everywhere", |c| {
        let commit = c.checker().commit_index();
        commit >= 4 && (0..c.len()).all(|i| c.applied(i) >= commit)
    });
    tick_until(&mut c, 20, "the group to quiesce", all_quiesced);
    (c, leader)
}

#[test]
fn a_quiet_cluster_quiesces_and_then_sends_only_liveness_beats() {
    let (mut c, leader) = quiet_cluster(1);
    let sent = c.network_stats().sent;
    let beats = c.liveness_stats().unwrap().beats_sent;
    for _ in 0..1000 {
        c.tick().unwrap();
        assert!(all_quiesced(&c), "{}", trace(&c));
    }
    assert_eq!(c.network_stats().sent, sent, "a quiesced group sends no Raft message");
    assert_eq!(
        c.liveness_stats().unwrap().beats_sent - beats,
        1000 * 6,
        "one beat per ordered node pair per tick"
    );
    assert_eq!(c.leader(), Some(leader));
    let id = c.id(leader).clone();
    assert!((0..3).all(|i| c.node(i).is_some_and(|r| r.status().leader.as_ref() == Some(&id))));
}

/// The followers of a quiesced group whose leader went away: the hosts' liveness
/// rule wakes them, they elect a new leader within a bounded number of ticks, and
/// writes commit again.
fn new_leader_after_losing_a_quiesced_leader(cut_off: bool) {
    let (mut c, old) = quiet_cluster(2);
    let elections = c.checker().stats().elections;
    if cut_off {
        c.network().isolate(old);
    } else {
        c.crash(old, CrashPoint::Now, 10_000);
    }
    // Silence for an election timeout, then an election timeout of the woken
    // followers' own (they respect the old leader's lease), then at most one more for
    // the randomized timeouts and a split vote or two.
    let ticks = tick_until(&mut c, 6 * ELECTION_TICK, "a new leader", |c| {
        c.leader().is_some_and(|l| l != old)
    });
    assert!(ticks > ELECTION_TICK, "elected after {ticks} ticks: {}", trace(&c));
    assert!(c.liveness_stats().unwrap().follower_wakes >= 2);
    assert!(c.checker().stats().elections > elections);
    let new = c.leader().unwrap();
    let before = c.checker().commit_index();
    assert!(c.propose(new, &[99]).unwrap().is_ok());
    tick_until(&mut c, 20, "the new write committed", |c| {
        c.checker().commit_index() > before
    });
    if cut_off {
        // Cut off, the old leader woke once its peers went silent and stepped down
        // by check-quorum.
        assert_ne!(c.node(old).map(|r| r.role()), Some(Role::Leader), "{}", trace(&c));
        c.network().heal();
        tick_until(&mut c, 100, "the old leader to follow", |c| {
            c.node(old).is_some_and(|r| r.leader() == Some(c.id(new)))
        });
    }
}

#[test]
fn followers_elect_a_new_leader_when_the_quiesced_leader_crashes() {
    new_leader_after_losing_a_quiesced_leader(false);
}

#[test]
fn followers_elect_a_new_leader_when_the_quiesced_leader_is_cut_off() {
    new_leader_after_losing_a_quiesced_leader(true);
}

#[test]
fn a_write_and_a_read_on_a_quiesced_leader_wake_it_and_complete() {
    let (mut c, leader) = quiet_cluster(3);
    let before = c.checker().commit_index();
    assert!(c.propose(leader, &[50]).unwrap().is_ok());
    assert!(!c.is_quiesced(leader), "a proposal wakes the leader");
    tick_until(&mut c, 20, "the write applied everywhere", |c| {
        let commit = c.checker().commit_index();
        commit > before && (0..c.len()).all(|i| c.applied(i) >= commit)
    });
    tick_until(&mut c, 20, "the group to quiesce again", all_quiesced);
    let served = c.stats().reads_served;
    assert!(c.read(leader, 7).unwrap());
    assert!(!c.is_quiesced(leader), "a read wakes the leader");
    tick_until(&mut c, 20, "the read served", |c| c.stats().reads_served > served);
    assert_eq!(c.checker().stats().reads_checked, 1);
    // A read at a quiesced follower is forwarded and wakes the leader too.
    tick_until(&mut c, 20, "the group to quiesce again", all_quiesced);
    let follower = (leader + 1) % 3;
    assert!(c.read(follower, 8).unwrap());
    tick_until(&mut c, 20, "the forwarded read served", |c| {
        c.stats().reads_served > served + 1
    });
}

#[test]
fn a_follower_restarting_while_the_group_is_quiesced_rejoins_without_an_election() {
    let (mut c, leader) = quiet_cluster(4);
    let term = c.node(leader).unwrap().term();
    let elections = c.checker().stats().elections;
    let follower = (leader + 1) % 3;
    c.crash(follower, CrashPoint::Now, 1);
    tick_until(
        &mut c,
        6 * ELECTION_TICK,
        "the restarted follower to find its leader",
        |c| c.node(follower).is_some_and(|r| r.leader() == Some(c.id(leader))),
    );
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.node(leader).unwrap().term(), term, "no needless leader change");
    assert_eq!(c.checker().stats().elections, elections);
    tick_until(&mut c, 30, "the group to quiesce again", all_quiesced);
}
