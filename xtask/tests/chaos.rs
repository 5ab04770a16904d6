//! `cargo xtask chaos` for 30 s: three node processes (the xtask binary's hidden
//! `chaos-node`), clients recording a history, every kind of fault at least once (kill,
//! pause, partition, loss, one-way, skew, churn, disk-eio, disk-full, disk-slow; the
//! run goes on until each happened); the history must check out, and every member
//! must catch up at the end. Then the same real history, with one final read changed
//! to an overwritten acknowledged value, must be caught as a lost write.

use std::time::Duration;

use easyraft_linearizability as check;
use easyraft_linearizability::{Call, Op, Outcome, Ret};
use xtask::chaos::faults::Fault;
use xtask::chaos::{run, ChaosOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_history_under_every_fault_kind_is_linearizable() {
    let seed = 20_240_601;
    let opts = ChaosOptions {
        duration: Duration::from_secs(30),
        clients: 6,
        exe: env!("CARGO_BIN_EXE_xtask").into(),
        ..ChaosOptions::new(seed).expect("current_exe")
    };
    let report = run(opts).await.expect("the chaos run went to the end");
    let failures: Vec<String> = report
        .verdict
        .failures
        .iter()
        .map(|f| f.describe(&report.history))
        .collect();
    assert!(
        report.passed,
        "seed {seed}: {failures:?} gave up on {:?}, anomalies {:?}",
        report.verdict.gave_up, report.anomalies
    );
    assert!(report.ok_ops() >= 200, "only {} ops answered", report.ok_ops());
    for kind in Fault::ALL {
        assert!(report.count(kind) >= 1, "no {kind} fault happened: {:?}", report.faults);
    }
    // The churn replaced a node: a new one added as a learner, promoted, a voter removed.
    let churn: Vec<&str> = report
        .faults
        .iter()
        .filter(|f| f.fault == Fault::Churn)
        .map(|f| f.what.as_str())
        .collect();
    assert!(
        churn.iter().any(|w| w.contains("as a learner")) && churn.iter().any(|w| w.contains("promoted")),
        "the churn did not replace a node: {churn:?}"
    );
    // The disk faults stopped the node they were armed on (then it was restarted).
    for kind in [Fault::DiskEio, Fault::DiskFull] {
        assert!(
            report
                .faults
                .iter()
                .any(|f| f.fault == kind && f.what.contains("it stopped")),
            "no {kind} fault stopped its node: {:?}",
            report.faults
        );
    }
    let finals = report.history.iter().filter(|o| o.final_read).count();
    assert_eq!(finals, 5, "one final read per key");

    // The checker is not a rubber stamp: make a final read return a value that an
    // acknowledged put wrote before another acknowledged write completed.
    let mut tampered = report.history.clone();
    let (final_at, old) = overwritten_value(&tampered).expect("some key was written twice");
    if let Outcome::Ok { ret, .. } = &mut tampered[final_at].outcome {
        *ret = Ret::Get { value: Some(old) };
    }
    let verdict = check::check(&tampered);
    assert!(!verdict.passed());
    assert!(verdict.failures.iter().any(|f| f.lost_write), "{verdict:?}");
}

/// A final read, and a value an acknowledged put wrote on its key that another
/// acknowledged write, invoked after the put completed, replaced before that read.
fn overwritten_value(history: &[Op]) -> Option<(usize, String)> {
    let complete = |o: &Op| match o.outcome {
        Outcome::Ok { complete, .. } => complete,
        _ => u64::MAX,
    };
    history
        .iter()
        .enumerate()
        .filter(|(_, o)| o.final_read)
        .find_map(|(f, read)| {
            history
                .iter()
                .filter(|p| p.key == read.key && !p.final_read && p.is_acknowledged_write())
                .find_map(|p| {
                    let value = match &p.call {
                        Call::Put { value } => value.clone(),
                        _ => return None,
                    };
                    let replaced = history.iter().any(|w| {
                        w.key == read.key
                            && w.is_acknowledged_write()
                            && w.invoke > complete(p)
                            && complete(w) < read.invoke
                    });
                    replaced.then_some((f, value))
                })
        })
}

/// A check of the checker against real processes: the same run with stale local
/// reads (`kv_get {"stale": true}`: no ReadIndex) must be rejected. A follower that
/// has not applied the latest commit, or a leader cut off by a partition, answers
/// with a value an acknowledged write already replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_stale_local_reads_are_caught_as_not_linearizable() {
    let seed = 4_242;
    let opts = ChaosOptions {
        duration: Duration::from_secs(8),
        clients: 6,
        faults: vec![Fault::Partition],
        stale_reads: true,
        exe: env!("CARGO_BIN_EXE_xtask").into(),
        ..ChaosOptions::new(seed).expect("current_exe")
    };
    let report = run(opts).await.expect("the chaos run went to the end");
    assert!(report.ok_ops() >= 100, "only {} ops answered", report.ok_ops());
    assert!(!report.passed, "seed {seed}: stale reads went unnoticed");
    let failure = &report.verdict.failures[0];
    let culprit = &report.history[failure.culprit];
    assert!(
        matches!(culprit.call, Call::Get) && !culprit.final_read && !failure.lost_write,
        "the culprit should be a client's stale get: {}",
        failure.describe(&report.history)
    );
}

#[test]
fn an_unknown_fault_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["chaos", "--faults", "meteor"])
        .output()
        .expect("xtask runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("meteor"));
}
