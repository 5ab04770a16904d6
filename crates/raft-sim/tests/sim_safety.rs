//! The simulator's main campaign: random scenarios on 3, 5 and 7 nodes under drops,
//! delays, duplicates, partitions, crashes and pauses, with the five safety
//! properties and linearizable reads checked after every step and liveness after
//! healing. `EASYRAFT_SIM_CASES` sets the total number of scenarios (default 1,500),
//! `EASYRAFT_SIM_STEPS` the steps of each (default 2,000). A failure prints the seed,
//! the scenario, a command that replays it and the recent events.

mod sim_common;

use raft_sim::Scenario;
use sim_common::{campaign, cases, replay_command, steps, RunResult};

/// The default total of scenarios over the three tests below.
const DEFAULT_CASES: u64 = 1_500;

fn scenario(seed: u64, nodes: usize) -> Scenario {
    Scenario::random(seed, nodes, steps())
}

fn replay_cmd(s: &Scenario) -> String {
    replay_command("sim_safety", "replay", s, "")
}

fn safety_campaign(nodes: usize) {
    campaign(
        &format!("sim_safety {nodes} nodes"),
        cases(DEFAULT_CASES, 3),
        |seed| scenario(seed, nodes),
        replay_cmd,
    );
}

#[test]
fn three_nodes_stay_safe_and_live_under_faults() {
    safety_campaign(3);
}

#[test]
fn five_nodes_stay_safe_and_live_under_faults() {
    safety_campaign(5);
}

#[test]
fn seven_nodes_stay_safe_and_live_under_faults() {
    safety_campaign(7);
}

/// Runs `s` twice: both runs must be clean and identical, event for event as far as
/// the statistics show (one seed, one run).
fn assert_replays_exactly(s: &Scenario) {
    let runs: Vec<String> = (0..2)
        .map(|_| match sim_common::run(s, "") {
            RunResult::Clean(stats) => stats.to_string(),
            RunResult::Failed { report, .. } => panic!("{report}"),
        })
        .collect();
    assert_eq!(runs[0], runs[1], "two runs of one seed differ");
}

/// Replays one scenario with its trace: `EASYRAFT_SIM_SEED=.. EASYRAFT_SIM_NODES=..`.
/// Without them, checks that a fixed seed replays exactly.
#[test]
fn replay() {
    let Ok(seed) = std::env::var("EASYRAFT_SIM_SEED") else {
        assert_replays_exactly(&scenario(0x5eed, 5));
        return;
    };
    let seed: u64 = seed.parse().expect("EASYRAFT_SIM_SEED is a u64");
    let nodes: usize = std::env::var("EASYRAFT_SIM_NODES").map_or(3, |n| n.parse().expect("EASYRAFT_SIM_NODES"));
    let s = scenario(seed, nodes);
    eprintln!("replaying {s}");
    match sim_common::run(&s, &replay_cmd(&s)) {
        RunResult::Clean(stats) => eprintln!("clean: {stats}"),
        RunResult::Failed { report, .. } => panic!("{report}"),
    }
}

/// Opt-in leader lease reads, under the faults they are meant to survive (no pauses:
/// the lease assumes the nodes' clocks run at one rate) with partitions that keep a
/// bridge node between two halves and crashes with quick restarts.
#[test]
fn lease_reads_stay_linearizable() {
    campaign("sim_safety lease reads", cases(DEFAULT_CASES, 5), lease_scenario, |s| {
        replay_command("sim_safety", "replay_lease", s, "")
    });
}

fn lease_scenario(seed: u64) -> Scenario {
    let mut s = scenario(seed, [3, 5][(seed % 2) as usize]);
    s.raft.check_quorum = true;
    s.raft.read_lease_ticks = Some(1 + seed % (s.raft.election_tick - 1));
    s.faults.pause_per_mille = 0;
    s.faults.partition_per_mille = s.faults.partition_per_mille.max(20);
    s.faults.crash_per_mille = s.faults.crash_per_mille.max(20);
    s.faults.max_downtime = s.faults.max_downtime.min(3);
    s.clients.read_per_mille = 800;
    s
}

/// Replays one lease-read scenario: `EASYRAFT_SIM_SEED=..`. Without it, checks that
/// a fixed lease seed replays exactly.
#[test]
fn replay_lease() {
    let Ok(seed) = std::env::var("EASYRAFT_SIM_SEED") else {
        assert_replays_exactly(&lease_scenario(0x5eed));
        return;
    };
    let s = lease_scenario(seed.parse().expect("EASYRAFT_SIM_SEED is a u64"));
    match sim_common::run(&s, "") {
        RunResult::Clean(stats) => eprintln!("clean: {stats}"),
        RunResult::Failed { report, .. } => panic!("{report}"),
    }
}
