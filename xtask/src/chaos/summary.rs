//! The summary a chaos run ends with.

use easyraft_linearizability as check;

use super::faults::Fault;
use super::options::ChaosReport;

/// Prints what the run found: the faults, the anomalies, the ops, the checker's
/// verdict and the one-line PASS or FAIL with the seed.
pub(super) fn print_summary(report: &ChaosReport, seed: u64) {
    println!();
    println!("faults:");
    for f in &report.faults {
        println!("  {:>6.1}s  {:<9} {}", f.at.as_secs_f64(), f.fault.name(), f.what);
    }
    let by_kind: Vec<String> = Fault::ALL
        .iter()
        .map(|k| (k, report.count(*k)))
        .filter(|(_, c)| *c > 0)
        .map(|(k, c)| format!("{k} {c}"))
        .collect();
    println!("faults by kind: {}", by_kind.join(", "));
    for a in &report.anomalies {
        println!("ANOMALY: {a}");
    }
    println!("ops (ok / failed / unknown):");
    for (kind, [ok, fail, unknown]) in check::counts(&report.history) {
        println!("  {kind:<4} {ok:>6} / {fail:>5} / {unknown:>5}");
    }
    let v = &report.verdict;
    println!(
        "checker: {} keys, {} ops in the search, {:.2?}",
        v.keys, v.ops_checked, report.check_time
    );
    for f in &v.failures {
        print!("{}", f.describe(&report.history));
    }
    for k in &v.gave_up {
        println!(
            "key {k}: the search exceeded its budget ({} configurations): no verdict",
            check::BUDGET
        );
    }
    println!();
    let ok = report.ok_ops();
    if report.passed {
        println!(
            "PASS: the history of {ok} answered ops through {} faults is linearizable; no acknowledged write lost (seed {seed})",
            report.faults.len()
        );
    } else if v.passed() {
        println!(
            "FAIL: the history is linearizable, but {} anomalies (seed {seed})",
            report.anomalies.len()
        );
    } else if v.failures.iter().any(|f| f.lost_write) {
        println!("FAIL: an acknowledged write was lost (seed {seed})");
    } else if !v.failures.is_empty() {
        println!("FAIL: the history is not linearizable (seed {seed})");
    } else {
        println!("FAIL: the checker gave up (seed {seed})");
    }
}
