//! Step 8 of the script and the checks: real reads on every node, each node's
//! status, and the verdict.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use easyraft::prelude::*;
use easyraft::Transport;
use serde_json::Value;

use super::common::fail_verdict;
use super::options::{DemoTransport, Report};
use super::scene::{Cut, DemoCluster, Scene, STEPS};
use super::status::{everything, node_status, rpc_probe, status_table, NodeStatus};
use crate::error::TaskError;
use crate::ports::loopback;
use crate::ui::Ui;
use examples::kv::{KvAnswer, KvStore as Kv};

impl Scene<'_> {
    /// 8. Verify.
    pub(super) async fn conclude<T: Transport>(
        self,
        mut cluster: DemoCluster<T>,
        started: Instant,
        cut: &Cut,
        acked: &[(String, String)],
    ) -> Result<Report, TaskError> {
        let Scene {
            ui,
            opts,
            n,
            ids,
            ports,
            token,
            ..
        } = self;
        let Cut {
            handles, stale_read, ..
        } = cut;
        let stale_read = *stale_read;
        ui.step(8, STEPS, "Verify");
        let mut report = verify(&ui, opts.transport, &cluster, ids, ports, token, handles, acked).await;
        if stale_read {
            report.checks.push(("no stale read on the cut-off side".into(), false));
            report.passed = false;
        }
        status_table(&ui, &cluster, ids, ports).await;
        cluster.stop().await;
        drop(cluster);
        report.elapsed = started.elapsed();
        if report.passed {
            report.verdict = format!(
                "PASS: {n} nodes agree on {} log entries ({} keys); no acknowledged write lost ({} of {} on every node)",
                report.entries, report.keys, report.acknowledged, report.acknowledged
            );
        } else {
            report.verdict = fail_verdict(&report.checks);
        }
        ui.verdict(report.passed, &report.verdict, report.elapsed);
        Ok(report)
    }
}

/// The final checks, from real reads on every node and each node's status.
#[allow(clippy::too_many_arguments)]
async fn verify<T: Transport>(
    ui: &Ui,
    transport: DemoTransport,
    cluster: &DemoCluster<T>,
    ids: &[NodeId],
    ports: &BTreeMap<NodeId, u16>,
    token: &str,
    handles: &[RaftHandle<Kv>],
    acked: &[(String, String)],
) -> Report {
    let mut checks: Vec<(String, bool)> = Vec::new();
    let mut maps = Vec::new();
    for h in handles {
        match tokio::time::timeout(Duration::from_secs(5), h.read(everything())).await {
            Ok(Ok(KvAnswer::Pairs(pairs))) => maps.push(pairs.into_iter().collect::<BTreeMap<_, _>>()),
            _ => checks.push((format!("linearizable read on {}", h.id()), false)),
        }
    }
    let lost: usize = maps
        .iter()
        .map(|m| acked.iter().filter(|(k, v)| m.get(k) != Some(v)).count())
        .sum();
    checks.push((
        format!(
            "every acknowledged write ({}) read back from every node ({})",
            acked.len(),
            maps.len()
        ),
        lost == 0 && maps.len() == handles.len(),
    ));
    checks.push((
        "every node's key-value state is identical".into(),
        maps.windows(2).all(|w| w[0] == w[1]),
    ));
    let mut statuses: Vec<NodeStatus> = Vec::new();
    for id in ids {
        if let Some(s) = node_status(cluster, id).await {
            statuses.push(s);
        }
    }
    checks.push((
        format!(
            "every node answers RaftHandle::status() ({} of {})",
            statuses.len(),
            ids.len()
        ),
        statuses.len() == ids.len() && statuses.iter().all(|s| s.running),
    ));
    if transport == DemoTransport::JsonRpc {
        let mut serving = 0;
        for id in ids {
            let (_, body) = rpc_probe(loopback(ports[id]), token).await;
            let code = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["code"].as_i64());
            serving += usize::from(code == Some(-32602));
        }
        checks.push((
            format!(
                "every node's JSON-RPC port still serves: a raft_appendEntries with bad params gets error -32602 ({serving} of {})",
                ids.len()
            ),
            serving == ids.len(),
        ));
    }
    let leaders = statuses.iter().filter(|s| s.role == "leader").count();
    let agree = statuses
        .windows(2)
        .all(|w| w[0].leader == w[1].leader && w[0].term == w[1].term);
    checks.push((
        "one leader, and every node follows it in the same term".into(),
        leaders == 1 && agree,
    ));
    let same_index = statuses
        .windows(2)
        .all(|w| w[0].applied == w[1].applied && w[0].commit == w[1].commit);
    checks.push(("every node has committed and applied the same index".into(), same_index));
    for (c, ok) in &checks {
        if *ok {
            ui.ok(c);
        } else {
            ui.bad(c);
        }
    }
    Report {
        passed: checks.iter().all(|(_, ok)| *ok),
        verdict: String::new(),
        checks,
        entries: statuses.first().map_or(0, |s| s.applied),
        keys: maps.first().map_or(0, |m| m.len()),
        acknowledged: acked.len(),
        elapsed: Duration::ZERO,
    }
}
