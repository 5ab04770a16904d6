//! `cargo xtask demo`: a real N-node cluster on loopback, over WebSocket (default) or
//! JSON-RPC (`--transport jsonrpc`), put through an election, replication, a leader
//! crash, a restart from disk and a partition, then checked: every acknowledged write
//! on every node, every node in the same state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft::prelude::*;
use easyraft::transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use easyraft::transport_ws::{WsConfig, WsTransport};
use easyraft::{storage_for, AnyStorage, Status, Transport};
use serde_json::{json, Value};

use crate::discovery::{DemoDiscoveries, DemoDiscovery};
use crate::http;
use crate::relay::Relays;
use crate::ui::{secs, Ui};
use examples::kv::{KvAnswer, KvCommand, KvQuery, KvStore as Kv};

/// Any error that ends the demo early.
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// The network between the demo's nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoTransport {
    /// WebSocket: `ws://host:port/raft/`, binary frames.
    #[default]
    Ws,
    /// JSON-RPC 2.0 (HTTP and WebSocket on one port, `raft_appendEntries`, ...; peers
    /// keep one WebSocket JSON-RPC connection each).
    JsonRpc,
}

impl DemoTransport {
    fn title(self) -> &'static str {
        match self {
            DemoTransport::Ws => "WebSocket",
            DemoTransport::JsonRpc => "JSON-RPC 2.0",
        }
    }
}

/// What `cargo xtask demo` runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Cluster size: 3, 5 or 7.
    pub nodes: usize,
    /// The transport between the nodes.
    pub transport: DemoTransport,
    /// How the nodes find each other (static maps, files, DNS or etcd).
    pub discovery: DemoDiscovery,
    /// The first node's port (the others follow); `None` picks free ports.
    pub base_port: Option<u16>,
    /// Writes per phase (three phases).
    pub writes: usize,
    /// Output.
    pub ui: Ui,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            nodes: 3,
            transport: DemoTransport::Ws,
            discovery: DemoDiscovery::Static,
            base_port: None,
            writes: 40,
            ui: Ui::plain(),
        }
    }
}

/// The outcome.
#[derive(Clone, Debug)]
pub struct Report {
    /// Whether every check passed.
    pub passed: bool,
    /// The one-line verdict.
    pub verdict: String,
    /// The checks and whether each passed.
    pub checks: Vec<(String, bool)>,
    /// The applied index every node reached.
    pub entries: u64,
    /// Keys in the replicated map.
    pub keys: usize,
    /// Writes the cluster acknowledged.
    pub acknowledged: usize,
    /// Wall time of the whole demo.
    pub elapsed: Duration,
}

const STEPS: usize = 8;
const WAIT: Duration = Duration::from_secs(15);

/// Timing for a demo on one (possibly busy) machine: elections within about a second.
/// The services demo uses it too.
pub(crate) fn demo_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(400),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(3),
        ..RaftConfig::default()
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Everything a run shares, whatever the transport.
struct Setup {
    opts: DemoOptions,
    started: Instant,
    ids: Vec<NodeId>,
    ports: BTreeMap<NodeId, u16>,
    data: tempfile::TempDir,
    relays: Arc<Relays>,
    discoveries: Arc<DemoDiscoveries>,
    token: String,
}

/// Runs the demo, printing as it goes.
pub async fn run(opts: DemoOptions) -> Result<Report, DemoError> {
    // Free ports are picked by binding and releasing them; another process may take
    // one before a node binds it. Then the demo starts again on other ports (only when
    // it picked them itself).
    let mut attempt = 0;
    loop {
        match run_once(opts.clone()).await {
            Err(e) if opts.base_port.is_none() && attempt < 2 && e.to_string().contains("Address already in use") => {
                attempt += 1;
                eprintln!("easyraft demo: {e}; starting again on other ports");
            }
            other => return other,
        }
    }
}

/// One run of the demo on ports picked once.
async fn run_once(opts: DemoOptions) -> Result<Report, DemoError> {
    let started = Instant::now();
    let n = opts.nodes;
    if n < 3 || n % 2 == 0 {
        return Err(format!("--nodes must be odd and at least 3 (got {n})").into());
    }
    let ids: Vec<NodeId> = (1..=n).map(|i| NodeId::new(format!("node{i}"))).collect();
    let ports: BTreeMap<NodeId, u16> = ids.iter().cloned().zip(pick_ports(n, opts.base_port)?).collect();
    let data = tempfile::Builder::new().prefix("easyraft-demo-").tempdir()?;
    let relays = Arc::new(Relays::start(&ports).await?);
    // Each node's view (peers at the relays of its links), published through the
    // chosen discovery backend.
    let mut views = BTreeMap::new();
    for id in &ids {
        views.insert(id.clone(), relays.discovery_for(id).get_all_node_addresses().await?);
    }
    let discoveries = Arc::new(DemoDiscoveries::start(opts.discovery, views, data.path()).await?);
    let token = format!("demo-{:016x}", random());
    let (d, p, t) = (discoveries.clone(), ports.clone(), token.clone());
    let setup = Setup {
        opts,
        started,
        ids,
        ports,
        data,
        relays,
        discoveries,
        token,
    };
    match setup.opts.transport {
        DemoTransport::Ws => {
            run_on(setup, move |id: &NodeId| {
                let cfg = WsConfig::new(loopback(p[id]), "easyraft-demo").with_token(t.clone());
                WsTransport::new(id.clone(), cfg, d.for_node(id))
            })
            .await
        }
        DemoTransport::JsonRpc => {
            run_on(setup, move |id: &NodeId| {
                let cfg = JsonRpcConfig::new(loopback(p[id]), "easyraft-demo").with_token(t.clone());
                JsonRpcTransport::new(id.clone(), cfg, d.for_node(id))
            })
            .await
        }
    }
}

/// The demo's cluster over transport `T`.
type DemoCluster<T> = Cluster<Kv, AnyStorage, T>;

/// The whole scenario over the transport `transport` builds for each node.
async fn run_on<T: Transport>(
    setup: Setup,
    transport: impl Fn(&NodeId) -> T + Send + Sync + 'static,
) -> Result<Report, DemoError> {
    let Setup {
        opts,
        started,
        ids,
        ports,
        data,
        relays,
        discoveries,
        token,
    } = setup;
    let ui = opts.ui;
    let n = opts.nodes;
    let jsonrpc = opts.transport == DemoTransport::JsonRpc;

    println!(
        "{}",
        ui.bold(&format!(
            "easyraft demo: a {n}-node Raft cluster over {} on 127.0.0.1",
            opts.transport.title()
        ))
    );

    // 1. Start.
    ui.step(1, STEPS, "Start the nodes");
    let mut cluster: DemoCluster<T> = {
        let dir = data.path().to_path_buf();
        Cluster::start(
            ids.clone(),
            demo_config(),
            move |id| storage_for(Some(&dir), id),
            |_| Kv::default(),
            transport,
        )
        .await?
    };
    for id in &ids {
        let port = ports[id];
        ui.line(if jsonrpc {
            format!(
                "{id}  http://127.0.0.1:{port}/   JSON-RPC 2.0 over HTTP and WebSocket (raft_appendEntries, raft_requestVote, ...)"
            )
        } else {
            format!("{id}  ws://127.0.0.1:{port}/raft/")
        });
    }
    ui.note(format!(
        "storage: FileStorage (segmented WAL, fsync on every append) under {}",
        data.path().display()
    ));
    if jsonrpc {
        ui.note("every call and every peer connection carries the cluster token (Authorization: Bearer ...) and the cluster id; a small replicated key-value map runs on top");
    } else {
        ui.note("each handshake carries the cluster id and a token; a small replicated key-value map runs on top");
    }
    ui.note("the transport carries Raft traffic only: the status tables below come from RaftHandle::status() on each node's handle in this process");
    ui.note("peer traffic goes through one loopback TCP relay per link, so step 6 can cut a real network");
    ui.note(format!("nodes find their peers through {}", discoveries.description()));

    // 2. Election.
    ui.step(2, STEPS, "Elect a leader");
    let (leader, took) = ui
        .spin(|| "waiting for the election".into(), cluster.wait_for_leader(WAIT))
        .await;
    let leader = leader?;
    ui.ok(format!(
        "{} won the election for term {} after {}",
        leader.id(),
        leader.view().term,
        secs(took)
    ));
    let addr = loopback(ports[leader.id()]);
    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), leader.status()).await {
        ui.note(format!("RaftHandle::status() on {} -> {}", leader.id(), describe(&s)));
    }
    if jsonrpc {
        let (code, body) = rpc_probe(addr, &token).await;
        ui.note(format!(
            "POST http://{addr}/ raft_appendEntries with params of the wrong shape -> HTTP {code} {body}"
        ));
    }
    status_table(&ui, &cluster, &ids, &ports).await;

    // 3. Replicate.
    ui.step(3, STEPS, "Replicate writes");
    let mut acked = Vec::new();
    let client = Client::new(cluster.nodes(), leader.id());
    acked.extend(write_phase(&ui, &client, "boot", opts.writes).await?);
    check_nodes(&ui, cluster.nodes().cloned().collect(), &acked).await;
    status_table(&ui, &cluster, &ids, &ports).await;

    // 4. Leader crash.
    ui.step(4, STEPS, "Kill the leader");
    let old = leader.id().clone();
    let old_term = leader.view().term;
    cluster.kill(&old).await;
    ui.line(format!(
        "killed {old}: its task aborted where it stood, like a crash; nothing flushed"
    ));
    let gone = Instant::now();
    let probe = loop {
        let probe = http::get(loopback(ports[&old]), "/").await;
        if probe.is_err() || gone.elapsed() > Duration::from_secs(1) {
            break probe;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    match probe {
        Ok((code, body)) => ui.note(format!("GET / on {old}'s port -> HTTP {code} {body}")),
        Err(e) => ui.note(format!("GET / on {old}'s port -> {e}")),
    }
    let (leader, took) = ui
        .spin(
            || "waiting for the survivors to elect a new leader".into(),
            cluster.wait_for_leader(WAIT),
        )
        .await;
    let leader = leader?;
    ui.ok(format!(
        "{} elected for term {} after {} (the dead leader's term was {old_term})",
        leader.id(),
        leader.view().term,
        secs(took)
    ));
    let client = Client::new(cluster.nodes(), leader.id());
    acked.extend(write_phase(&ui, &client, "failover", opts.writes).await?);
    check_nodes(&ui, cluster.nodes().cloned().collect(), &acked).await;
    status_table(&ui, &cluster, &ids, &ports).await;

    // 5. Restart from disk.
    ui.step(5, STEPS, &format!("Restart {old} from its data directory"));
    let target = leader.view().commit;
    let back = restart(&mut cluster, &old).await?;
    let (caught_up, took) = ui
        .spin(
            || format!("{old} replays its log and fetches what it missed"),
            wait_until(WAIT, || back.view().applied >= target),
        )
        .await;
    caught_up.map_err(|_| format!("{old} did not catch up to index {target}"))?;
    let v = back.view();
    ui.ok(format!(
        "{old} is back as a {} of {} and caught up to index {} in {}",
        v.role,
        v.leader.as_ref().map_or("-", |l| l.as_str()),
        v.applied,
        secs(took)
    ));
    check_nodes(&ui, vec![back.clone()], &acked).await;
    status_table(&ui, &cluster, &ids, &ports).await;

    // 6. Partition.
    let leader = cluster.wait_for_leader(WAIT).await?;
    let minority_size = (n - 1) / 2;
    let mut minority: Vec<NodeId> = vec![leader.id().clone()];
    minority.extend(
        ids.iter()
            .filter(|id| *id != leader.id())
            .take(minority_size - 1)
            .cloned(),
    );
    let majority: Vec<NodeId> = ids.iter().filter(|id| !minority.contains(id)).cloned().collect();
    ui.step(6, STEPS, "Cut a minority (with the leader) off the network");
    let cut_term = leader.view().term;
    relays.cut(minority.iter().cloned());
    ui.line(format!(
        "cut {} off from {}: every connection across the cut is closed and new ones are refused",
        if minority.len() == 1 {
            format!("{} (the leader)", minority[0])
        } else {
            format!("{} (the leader) and {}", minority[0], list(&minority[1..]))
        },
        list(&majority)
    ));
    ui.note("all nodes keep running; the status table still comes from each node's handle");
    let handles: Vec<RaftHandle<Kv>> = cluster.nodes().cloned().collect();
    let side =
        |ids: &[NodeId]| -> Vec<RaftHandle<Kv>> { handles.iter().filter(|h| ids.contains(h.id())).cloned().collect() };
    let (minor, major) = (side(&minority), side(&majority));
    let (res, took) = ui
        .spin(
            || "waiting for the old leader to step down and the majority to elect".into(),
            wait_until(WAIT, || {
                let stepped_down = minor.iter().all(|h| h.view().role != Role::Leader);
                let elected = major.iter().find(|h| {
                    let v = h.view();
                    v.role == Role::Leader && v.term > cut_term
                });
                stepped_down
                    && elected.is_some_and(|l| {
                        let agree = major
                            .iter()
                            .filter(|h| h.view().leader.as_ref() == Some(l.id()))
                            .count();
                        agree * 2 > n
                    })
            }),
        )
        .await;
    res.map_err(|_| "the majority did not elect a new leader")?;
    let new_leader = major
        .iter()
        .find(|h| h.view().role == Role::Leader)
        .cloned()
        .ok_or("no leader on the majority side")?;
    ui.ok(format!(
        "{} stepped down (check-quorum: it no longer hears a majority)",
        leader.id()
    ));
    ui.ok(format!(
        "{} elected for term {} on the majority side after {}",
        new_leader.id(),
        new_leader.view().term,
        secs(took)
    ));
    let client = Client::new(major.iter(), new_leader.id());
    acked.extend(write_phase(&ui, &client, "split", opts.writes).await?);
    let cut_off = leader.clone();
    let mut stale_read = false;
    let write = tokio::time::timeout(
        Duration::from_millis(1500),
        cut_off.propose(KvCommand::Put {
            key: "split-minority".into(),
            value: "written on the cut-off side".into(),
        }),
    )
    .await;
    match write {
        Ok(Ok(_)) => {
            ui.bad(format!("a write on {} was acknowledged", cut_off.id()));
            acked.push(("split-minority".into(), "written on the cut-off side".into()));
        }
        Ok(Err(e)) => ui.ok(format!(
            "a write sent to the old leader {} is refused: {e}",
            cut_off.id()
        )),
        Err(_) => ui.ok(format!(
            "a write sent to the old leader {} is not acknowledged (no answer in 1.5 s)",
            cut_off.id()
        )),
    }
    let read = tokio::time::timeout(
        Duration::from_millis(1500),
        cut_off.read(KvQuery::Get("boot-000".into())),
    )
    .await;
    match read {
        Ok(Ok(_)) => {
            stale_read = true;
            ui.bad(format!(
                "a linearizable read was served by the cut-off {}",
                cut_off.id()
            ));
        }
        Ok(Err(e)) => ui.ok(format!(
            "a linearizable read on {} is refused ({e}): it serves no stale data",
            cut_off.id()
        )),
        Err(_) => ui.ok(format!(
            "a linearizable read on {} gets no answer in 1.5 s: it serves no stale data",
            cut_off.id()
        )),
    }
    let term_now = cut_off.view().term;
    if term_now == cut_term {
        ui.note(format!(
            "{}'s term is still {term_now}: pre-vote keeps a cut-off node from inflating terms",
            cut_off.id()
        ));
    }
    status_table(&ui, &cluster, &ids, &ports).await;

    // 7. Heal.
    ui.step(7, STEPS, "Heal the network");
    relays.heal();
    let leader_id = new_leader.id().clone();
    let (res, took) = ui
        .spin(
            || format!("waiting for {} to rejoin and catch up", list(&minority)),
            wait_until(WAIT, || {
                let commit = new_leader.view().commit;
                handles.iter().all(|h| {
                    let v = h.view();
                    v.leader.as_ref() == Some(&leader_id) && v.applied == commit
                })
            }),
        )
        .await;
    res.map_err(|_| format!("{} did not rejoin", list(&minority)))?;
    ui.ok(format!(
        "{} rejoined as follower{} of {leader_id} and caught up after {}",
        list(&minority),
        if minority.len() > 1 { "s" } else { "" },
        secs(took)
    ));

    // 8. Verify.
    ui.step(8, STEPS, "Verify");
    let mut report = verify(&ui, opts.transport, &cluster, &ids, &ports, &token, &handles, &acked).await;
    if stale_read {
        report.checks.push(("no stale read on the cut-off side".into(), false));
        report.passed = false;
    }
    status_table(&ui, &cluster, &ids, &ports).await;
    cluster.stop().await;
    drop(cluster);
    report.elapsed = started.elapsed();
    if report.passed {
        report.verdict = format!(
            "PASS: {n} nodes agree on {} log entries ({} keys); no acknowledged write lost ({} of {} on every node)",
            report.entries, report.keys, report.acknowledged, report.acknowledged
        );
    } else {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(c, _)| c.as_str())
            .collect();
        report.verdict = format!("FAIL: {}", failed.join("; "));
    }
    println!();
    let verdict = if report.passed {
        ui.green(&ui.bold(&report.verdict))
    } else {
        ui.red(&ui.bold(&report.verdict))
    };
    println!("{verdict}");
    println!("{}", ui.dim(&format!("finished in {}", secs(report.elapsed))));
    Ok(report)
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

/// Restarts `id` (retrying briefly while the killed incarnation releases its data
/// directory lock or its port).
async fn restart<T: Transport>(cluster: &mut DemoCluster<T>, id: &NodeId) -> Result<RaftHandle<Kv>, DemoError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cluster.restart(id.clone()).await {
            Ok(h) => return Ok(h),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("cannot restart {id}: {e}").into()),
        }
    }
}

/// What the status tables and the final checks read of a node.
struct NodeStatus {
    role: String,
    term: u64,
    leader: Option<String>,
    commit: u64,
    applied: u64,
    running: bool,
}

/// One node's status from its handle, or `None` when it is down (or does not answer
/// within a second).
async fn node_status<T: Transport>(cluster: &DemoCluster<T>, id: &NodeId) -> Option<NodeStatus> {
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
fn describe(s: &Status) -> String {
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
async fn rpc_probe(addr: SocketAddr, token: &str) -> (String, String) {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "raft_appendEntries", "params": {"term": "not a number"}});
    match http::post_json(addr, &call.to_string(), Some(token), Duration::from_secs(1)).await {
        Ok((code, body)) => (code.to_string(), body.trim().to_string()),
        Err(e) => ("-".into(), e.to_string()),
    }
}

/// Prints the status table, from each node's handle.
async fn status_table<T: Transport>(ui: &Ui, cluster: &DemoCluster<T>, ids: &[NodeId], ports: &BTreeMap<NodeId, u16>) {
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
async fn check_nodes(ui: &Ui, nodes: Vec<RaftHandle<Kv>>, acked: &[(String, String)]) {
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

/// Writes `count` keys `tag-000...` through `client`, four at a time; returns the
/// acknowledged `(key, value)` pairs.
async fn write_phase(ui: &Ui, client: &Client, tag: &str, count: usize) -> Result<Vec<(String, String)>, DemoError> {
    const LANES: usize = 4;
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let client = client.clone();
        let done = done.clone();
        let tag = tag.to_string();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for i in (lane..count).step_by(LANES) {
                let (key, value) = (format!("{tag}-{i:03}"), format!("{tag} value {i}"));
                client.put(&key, &value).await?;
                acked.push((key, value));
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, DemoError>(acked)
        });
    }
    let all = async {
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r??);
        }
        Ok::<_, DemoError>(all)
    };
    let (all, took) = ui
        .spin(
            || format!("writing {}/{count} keys {tag}-*", done.load(Ordering::Relaxed)),
            all,
        )
        .await;
    let mut all = all?;
    all.sort();
    let rate = count as f64 / took.as_secs_f64().max(1e-6);
    let retried = client.retries.load(Ordering::Relaxed);
    let retried = if retried > 0 {
        format!("; {retried} tries redirected or retried")
    } else {
        String::new()
    };
    ui.ok(format!(
        "{count} writes ({tag}-000..{tag}-{:03}) acknowledged by {} in {} ({rate:.0} writes/s{retried})",
        count.saturating_sub(1),
        client.leader_id(),
        secs(took)
    ));
    Ok(all)
}

/// A client that sends writes to the leader, follows `NotLeader` hints and retries
/// (writes are idempotent `Set`s, so a retry after a timeout is safe).
#[derive(Clone)]
struct Client {
    nodes: Arc<Vec<RaftHandle<Kv>>>,
    leader: Arc<AtomicUsize>,
    retries: Arc<AtomicUsize>,
}

impl Client {
    fn new<'a>(nodes: impl IntoIterator<Item = &'a RaftHandle<Kv>>, leader: &NodeId) -> Self {
        let nodes: Vec<RaftHandle<Kv>> = nodes.into_iter().cloned().collect();
        let i = nodes.iter().position(|h| h.id() == leader).unwrap_or(0);
        Client {
            nodes: Arc::new(nodes),
            leader: Arc::new(AtomicUsize::new(i)),
            retries: Arc::default(),
        }
    }

    fn leader_id(&self) -> &NodeId {
        self.nodes[self.leader.load(Ordering::Relaxed)].id()
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), DemoError> {
        let deadline = Instant::now() + WAIT;
        loop {
            let i = self.leader.load(Ordering::Relaxed);
            let cmd = KvCommand::Put {
                key: key.to_string(),
                value: value.to_string(),
            };
            let e = match self.nodes[i].propose(cmd).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!("the write of {key} was not acknowledged: {e}").into());
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            let hinted = e
                .leader_hint()
                .and_then(|l| self.nodes.iter().position(|h| h.id() == l));
            let next = hinted.unwrap_or((i + 1) % self.nodes.len());
            let _ = self
                .leader
                .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
            if hinted.is_none() || next == i {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

/// The query of the whole map.
fn everything() -> KvQuery {
    KvQuery::Scan {
        prefix: String::new(),
        limit: usize::MAX,
    }
}

/// Polls `cond` until it holds or `timeout` passes.
async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` ports on 127.0.0.1: from `base` on, or free ones the OS picks.
fn pick_ports(n: usize, base: Option<u16>) -> Result<Vec<u16>, DemoError> {
    let ports: Vec<u16> = match base {
        Some(b) => (0..n as u16)
            .map(|i| b.checked_add(i).ok_or("--base-port is too high"))
            .collect::<Result<_, _>>()?,
        None => {
            let held = (0..n)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
                .collect::<std::io::Result<Vec<_>>>()?;
            held.iter()
                .map(|l| l.local_addr().map(|a| a.port()))
                .collect::<std::io::Result<_>>()?
        }
    };
    if base.is_some() {
        for p in &ports {
            std::net::TcpListener::bind(("127.0.0.1", *p)).map_err(|e| format!("port {p} is not free: {e}"))?;
        }
    }
    Ok(ports)
}

fn list(ids: &[NodeId]) -> String {
    ids.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
}

/// Some randomness for the cluster token, without a dependency.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
