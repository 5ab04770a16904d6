//! What the demo reads of each node: the status tables, the one-line description of
//! `RaftHandle::status()`, the JSON-RPC probe, and the acknowledged writes each node
//! holds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use easyraft::prelude::*;
use easyraft::{Status, Transport};
use serde_json::json;

use super::scene::DemoCluster;
use crate::http;
use crate::ui::Ui;
use examples::kv::{KvAnswer, KvQuery, KvStore as Kv};

/// What the status tables and the final checks read of a node.
pub(super) struct NodeStatus {
    pub(super) role: String,
    pub(super) term: u64,
    pub(super) leader: Option<String>,
    pub(super) commit: u64,
    pub(super) applied: u64,
    pub(super) running: bool,
}

/// One node's status from its handle, or `None` when it is down (or does not answer
/// within a second).
pub(super) async fn node_status<T: Transport>(cluster: &DemoCluster<T>, id: &NodeId) -> Option<NodeStatus> {
    let h = cluster.node(id)?;
    let running = h.view().running;
    let s = tokio::time::timeout(Duration::from_secs(1), h.status())
        .await
        .ok()?
        .ok()?;
    Some(NodeStatus {
        role: s.role.to_string(),
        term: s.term,
        leader: s.leader.map(|l| l.to_string()),
        commit: s.commit,
        applied: s.applied,
        running,
    })
}

/// A one-line summary of `RaftHandle::status()`.
pub(super) fn describe(s: &Status) -> String {
    let voters: Vec<&str> = s.membership.voters.iter().map(|v| v.as_str()).collect();
    let mut line = format!(
        "{} of term {}, commit {}, applied {}, log {}..{}, voters {}",
        s.role,
        s.term,
        s.commit,
        s.applied,
        s.first_index,
        s.last_index,
        voters.join(" ")
    );
    let peers: Vec<String> = s
        .progress
        .iter()
        .filter(|(id, _)| **id != s.id)
        .map(|(id, p)| format!("{id} matches {}", p.match_index))
        .collect();
    if !peers.is_empty() {
        line.push_str(&format!("; {}", peers.join(", ")));
    }
    line
}

/// A Raft method called with params of the wrong shape, with the cluster token, as
/// any JSON-RPC client could: the node must answer -32602 and pass nothing on.
pub(super) async fn rpc_probe(addr: SocketAddr, token: &str) -> (String, String) {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "raft_appendEntries", "params": {"term": "not a number"}});
    match http::post_json(addr, &call.to_string(), Some(token), Duration::from_secs(1)).await {
        Ok((code, body)) => (code.to_string(), body.trim().to_string()),
        Err(e) => ("-".into(), e.to_string()),
    }
}

/// Prints the status table, from each node's handle.
pub(super) async fn status_table<T: Transport>(
    ui: &Ui,
    cluster: &DemoCluster<T>,
    ids: &[NodeId],
    ports: &BTreeMap<NodeId, u16>,
) {
    let mut rows = Vec::new();
    for id in ids {
        let port = ports[id];
        let row = match node_status(cluster, id).await {
            Some(s) if s.running => vec![
                id.to_string(),
                port.to_string(),
                s.role,
                s.term.to_string(),
                s.leader.unwrap_or_else(|| "-".into()),
                s.commit.to_string(),
                s.applied.to_string(),
            ],
            _ => {
                let mut r = vec![id.to_string(), port.to_string(), "down".into()];
                r.extend(vec!["-".to_string(); 4]);
                r
            }
        };
        rows.push(row);
    }
    println!();
    ui.table(
        &["node", "port", "role", "term", "leader", "commit", "applied"],
        &rows,
        |_, col, text| match (col, text) {
            (2, "leader") => ui.green(&ui.bold(text)),
            (2, "down") => ui.red(text),
            (2, "follower") => text.to_string(),
            (2, _) => ui.yellow(text),
            _ => text.to_string(),
        },
    );
}

/// Reads the whole map on each node (linearizable) and reports the acknowledged writes
/// it holds.
pub(super) async fn check_nodes(ui: &Ui, nodes: Vec<RaftHandle<Kv>>, acked: &[(String, String)]) {
    for h in nodes {
        let role = h.view().role;
        match tokio::time::timeout(Duration::from_secs(5), h.read(everything())).await {
            Ok(Ok(KvAnswer::Pairs(pairs))) => {
                let map: BTreeMap<String, String> = pairs.into_iter().collect();
                let present = acked.iter().filter(|(k, v)| map.get(k) == Some(v)).count();
                let line = format!(
                    "{} ({role}): {present} of {} acknowledged writes applied (linearizable read on {})",
                    h.id(),
                    acked.len(),
                    h.id()
                );
                if present == acked.len() {
                    ui.ok(line);
                } else {
                    ui.bad(line);
                }
            }
            Ok(Ok(other)) => ui.bad(format!("{}: unexpected answer {other:?}", h.id())),
            Ok(Err(e)) => ui.bad(format!("{}: read failed: {e}", h.id())),
            Err(_) => ui.bad(format!("{}: read timed out", h.id())),
        }
    }
}

/// The query of the whole map.
pub(super) fn everything() -> KvQuery {
    KvQuery::Scan {
        prefix: String::new(),
        limit: usize::MAX,
    }
}
