//! Shared by the simulator's test files: budgets from the environment, running a
//! scenario with a full failure report (seed, scenario, replay command, node states,
//! recent events), and proptest campaigns over seeds.

#![allow(dead_code, unreachable_pub)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::any;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use raft_sim::{Outcome, Scenario, Simulation, Stats};

/// Steps per scenario unless `EASYRAFT_SIM_STEPS` says otherwise.
pub const DEFAULT_STEPS: u64 = 2_000;
/// Recent events printed with a failure (`EASYRAFT_SIM_TRACE` overrides).
pub const TRACE_LINES: usize = 400;

fn trace_lines() -> usize {
    env_u64("EASYRAFT_SIM_TRACE").map_or(TRACE_LINES, |n| n as usize)
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// Fault-phase steps per scenario.
pub fn steps() -> u64 {
    env_u64("EASYRAFT_SIM_STEPS").unwrap_or(DEFAULT_STEPS)
}

/// This test's share of the campaign: `EASYRAFT_SIM_CASES` (a total over the
/// `shares` tests of a file) or the default total.
pub fn cases(default_total: u64, shares: u64) -> u64 {
    let total = env_u64("EASYRAFT_SIM_CASES").unwrap_or(default_total);
    total.div_ceil(shares).max(1)
}

/// The one-line command that replays `scenario` exactly.
pub fn replay_command(test_file: &str, replay_test: &str, scenario: &Scenario, extra_env: &str) -> String {
    format!(
        "{extra_env}EASYRAFT_SIM_SEED={} EASYRAFT_SIM_NODES={} EASYRAFT_SIM_STEPS={} cargo test -p raft-sim --test {test_file} {replay_test} -- --nocapture --exact",
        scenario.seed, scenario.nodes, scenario.steps
    )
}

/// How a run ended.
pub enum RunResult {
    /// No violation.
    Clean(Stats),
    /// A violation or a panic, with the full report.
    Failed { outcome: Option<Outcome>, report: String },
}

/// Runs `scenario` fast (no trace); on a violation or a panic, runs it again with the
/// trace on (it replays exactly) and builds the report.
pub fn run(scenario: &Scenario, replay: &str) -> RunResult {
    let fast = catch_unwind(AssertUnwindSafe(|| Simulation::new(scenario, 0).map(|mut s| s.run())));
    if let Ok(Ok(outcome)) = &fast {
        if outcome.violation.is_none() {
            return RunResult::Clean(outcome.stats);
        }
    }
    let mut sim = match Simulation::new(scenario, trace_lines()) {
        Ok(sim) => sim,
        Err(e) => {
            return RunResult::Failed {
                outcome: None,
                report: format!("scenario does not start: {e}\nscenario: {scenario}\nreplay: {replay}"),
            }
        }
    };
    let traced = catch_unwind(AssertUnwindSafe(|| sim.run()));
    let (outcome, what) = match traced {
        Ok(o) => {
            let what = o
                .violation
                .as_ref()
                .map_or("no violation on the traced replay?!".to_string(), |v| v.to_string());
            (Some(o), what)
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            (None, format!("PANIC: {msg}"))
        }
    };
    let report = format!(
        "\n==== raft-sim: {what}\nscenario: {scenario}\nreplay:   {replay}\n{}==== end of report\n",
        sim.report()
    );
    RunResult::Failed { outcome, report }
}

/// A proptest campaign: `cases` scenarios from random seeds, each made by `make`;
/// the first failure fails the test with its report. Prints the totals.
pub fn campaign(name: &str, cases: u64, make: impl Fn(u64) -> Scenario, replay: impl Fn(&Scenario) -> String) -> Stats {
    let config = Config {
        cases: cases as u32,
        max_shrink_iters: 0,
        failure_persistence: None,
        ..Config::default()
    };
    let totals = std::cell::RefCell::new(Stats::default());
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&any::<u64>(), |seed| {
        let scenario = make(seed);
        match run(&scenario, &replay(&scenario)) {
            RunResult::Clean(stats) => {
                totals.borrow_mut().merge(&stats);
                Ok(())
            }
            RunResult::Failed { report, .. } => {
                eprintln!("{report}");
                Err(TestCaseError::fail(report))
            }
        }
    });
    let totals = totals.into_inner();
    eprintln!("{name}: {totals} [{:.1}s]", started.elapsed().as_secs_f64());
    match result {
        Ok(()) => totals,
        Err(TestError::Fail(reason, seed)) => panic!("{name}: seed {seed} failed: {reason}"),
        Err(e) => panic!("{name}: {e}"),
    }
}
