//! Steps 1 to 5 of the script: start, election, replication, a leader crash, and a
//! restart from disk.

use std::time::{Duration, Instant};

use easyraft::prelude::*;
use easyraft::{storage_for, Transport};

use super::client::{write_phase, Client};
use super::common::{await_new_leader, catch_up, demo_config, elect, restart_retrying};
use super::scene::{DemoCluster, Scene, STEPS};
use super::status::{check_nodes, describe, rpc_probe, status_table};
use crate::discovery::DemoDiscoveries;
use crate::error::TaskError;
use crate::http;
use crate::ports::loopback;
use crate::ui::secs;
use examples::kv::KvStore as Kv;

impl Scene<'_> {
    /// 1. Start.
    pub(super) async fn start<T: Transport>(
        self,
        data: &tempfile::TempDir,
        discoveries: &DemoDiscoveries,
        transport: impl Fn(&NodeId) -> T + Send + Sync + 'static,
    ) -> Result<DemoCluster<T>, TaskError> {
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
    pub(super) async fn elect<T: Transport>(self, cluster: &DemoCluster<T>) -> Result<RaftHandle<Kv>, TaskError> {
        let Scene {
            ui,
            jsonrpc,
            ids,
            ports,
            token,
            ..
        } = self;
        ui.step(2, STEPS, "Elect a leader");
        let leader = elect(&ui, cluster).await?;
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
    pub(super) async fn replicate<T: Transport>(
        self,
        cluster: &DemoCluster<T>,
        leader: &RaftHandle<Kv>,
    ) -> Result<Vec<(String, String)>, TaskError> {
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
    pub(super) async fn kill_leader<T: Transport>(
        self,
        cluster: &mut DemoCluster<T>,
        leader: &RaftHandle<Kv>,
        acked: &mut Vec<(String, String)>,
    ) -> Result<(NodeId, RaftHandle<Kv>), TaskError> {
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
        let (leader, took) = await_new_leader(&ui, cluster).await?;
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
    pub(super) async fn restart_from_disk<T: Transport>(
        self,
        cluster: &mut DemoCluster<T>,
        old: &NodeId,
        leader: &RaftHandle<Kv>,
        acked: &[(String, String)],
    ) -> Result<(), TaskError> {
        let Scene { ui, ids, ports, .. } = self;
        ui.step(5, STEPS, &format!("Restart {old} from its data directory"));
        let target = leader.view().commit;
        let back = restart_retrying(old.as_str(), async || cluster.restart(old.clone()).await).await?;
        catch_up(&ui, old.as_str(), &back, target).await?;
        check_nodes(&ui, vec![back.clone()], acked).await;
        status_table(&ui, cluster, ids, ports).await;
        Ok(())
    }
}
