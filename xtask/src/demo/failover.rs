//! The script: the driver and steps 1 to 5 (start, election, replication, a leader
//! crash, a restart from disk); steps 6 and 7 are in `partition`, step 8 in `verify`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use easyraft::prelude::*;
use easyraft::{storage_for, Transport};

use super::client::{write_phase, Client};
use super::ports::loopback;
use super::setup::{DemoCluster, Setup};
use super::status::{describe, rpc_probe, status_table};
use super::verify::check_nodes;
use super::{demo_config, wait_until, DemoError, DemoOptions, DemoTransport, Report, STEPS, WAIT};
use crate::discovery::DemoDiscoveries;
use crate::http;
use crate::ui::{secs, Ui};
use examples::kv::KvStore as Kv;

/// What every step reads.
#[derive(Clone, Copy)]
pub(super) struct Scene<'a> {
    pub(super) ui: Ui,
    pub(super) opts: &'a DemoOptions,
    pub(super) n: usize,
    pub(super) jsonrpc: bool,
    pub(super) ids: &'a [NodeId],
    pub(super) ports: &'a BTreeMap<NodeId, u16>,
    pub(super) token: &'a str,
}

/// The whole scenario over the transport `transport` builds for each node.
pub(super) async fn run_on<T: Transport>(
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
    let scene = Scene {
        ui,
        opts: &opts,
        n,
        jsonrpc,
        ids: &ids,
        ports: &ports,
        token: &token,
    };

    println!(
        "{}",
        ui.bold(&format!(
            "easyraft demo: a {n}-node Raft cluster over {} on 127.0.0.1",
            opts.transport.title()
        ))
    );

    let mut cluster = scene.start(&data, &discoveries, transport).await?;
    let leader = scene.elect(&cluster).await?;
    let mut acked = scene.replicate(&cluster, &leader).await?;
    let (old, leader) = scene.kill_leader(&mut cluster, &leader, &mut acked).await?;
    scene.restart_from_disk(&mut cluster, &old, &leader, &acked).await?;
    let cut = scene.partition(&cluster, &relays, &mut acked).await?;
    scene.heal(&relays, &cut).await?;
    scene.conclude(cluster, started, &cut, &acked).await
}

impl Scene<'_> {
    /// 1. Start.
    async fn start<T: Transport>(
        self,
        data: &tempfile::TempDir,
        discoveries: &DemoDiscoveries,
        transport: impl Fn(&NodeId) -> T + Send + Sync + 'static,
    ) -> Result<DemoCluster<T>, DemoError> {
        let Scene {
            ui,
            jsonrpc,
            ids,
            ports,
            ..
        } = self;
        ui.step(1, STEPS, "Start the nodes");
        let cluster: DemoCluster<T> = {
            let dir = data.path().to_path_buf();
            Cluster::start(
                ids.to_vec(),
                demo_config(),
                move |id| storage_for(Some(&dir), id),
                |_| Kv::default(),
                transport,
            )
            .await?
        };
        for id in ids {
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
        Ok(cluster)
    }

    /// 2. Election.
    async fn elect<T: Transport>(self, cluster: &DemoCluster<T>) -> Result<RaftHandle<Kv>, DemoError> {
        let Scene {
            ui,
            jsonrpc,
            ids,
            ports,
            token,
            ..
        } = self;
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
            let (code, body) = rpc_probe(addr, token).await;
            ui.note(format!(
                "POST http://{addr}/ raft_appendEntries with params of the wrong shape -> HTTP {code} {body}"
            ));
        }
        status_table(&ui, cluster, ids, ports).await;
        Ok(leader)
    }

    /// 3. Replicate; returns the acknowledged writes.
    async fn replicate<T: Transport>(
        self,
        cluster: &DemoCluster<T>,
        leader: &RaftHandle<Kv>,
    ) -> Result<Vec<(String, String)>, DemoError> {
        let Scene {
            ui, opts, ids, ports, ..
        } = self;
        ui.step(3, STEPS, "Replicate writes");
        let mut acked = Vec::new();
        let client = Client::new(cluster.nodes(), leader.id());
        acked.extend(write_phase(&ui, &client, "boot", opts.writes).await?);
        check_nodes(&ui, cluster.nodes().cloned().collect(), &acked).await;
        status_table(&ui, cluster, ids, ports).await;
        Ok(acked)
    }

    /// 4. Leader crash; returns the killed node and the new leader.
    async fn kill_leader<T: Transport>(
        self,
        cluster: &mut DemoCluster<T>,
        leader: &RaftHandle<Kv>,
        acked: &mut Vec<(String, String)>,
    ) -> Result<(NodeId, RaftHandle<Kv>), DemoError> {
        let Scene {
            ui, opts, ids, ports, ..
        } = self;
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
        check_nodes(&ui, cluster.nodes().cloned().collect(), acked).await;
        status_table(&ui, cluster, ids, ports).await;
        Ok((old, leader))
    }

    /// 5. Restart from disk.
    async fn restart_from_disk<T: Transport>(
        self,
        cluster: &mut DemoCluster<T>,
        old: &NodeId,
        leader: &RaftHandle<Kv>,
        acked: &[(String, String)],
    ) -> Result<(), DemoError> {
        let Scene { ui, ids, ports, .. } = self;
        ui.step(5, STEPS, &format!("Restart {old} from its data directory"));
        let target = leader.view().commit;
        let back = restart(cluster, old).await?;
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
        check_nodes(&ui, vec![back.clone()], acked).await;
        status_table(&ui, cluster, ids, ports).await;
        Ok(())
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
