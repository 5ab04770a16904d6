//! `cargo xtask chaos-node`: one node of the chaos cluster, a process of its own.
//!
//! It runs a node of the replicated KV (`examples::kv`, in client sessions:
//! `easyraft::cluster::sessions`, so the clients' retried writes apply once) on the
//! JSON-RPC transport (its
//! Raft port, where it finds its peers at the driver's relays, so partitions cut Raft
//! traffic only), with the file storage (fsync on every append) in its data directory,
//! and serves the kv API on its own API port ([`examples::serve`], built on the node's
//! handle; the clients connect to it directly). It reports every change of role on stdout as
//! `role=ROLE term=TERM leader=ID` (how the driver knows whom to kill), and exits when
//! its stdin closes, so a driver that dies takes its nodes with it. It exits with an
//! error when its Raft node stops on its own (a storage error).
//!
//! Beside the kv API it serves three admin methods the chaos driver uses:
//! - `admin_status`: role, term, leader, commit, applied and the membership;
//! - `admin_changeMembership {"changes": [{"op": "addLearner"|"addVoter"|"promote"|"remove", "id": ID}, ...]}`:
//!   `RaftHandle::change_membership` (several changes at once are one joint change);
//! - `admin_diskFault {"kind": "eio"|"enospc"|"slow", "ms": DELAY, "for_ms": WINDOW}`:
//!   arms the fault-injecting file system ([`FaultyVfs`]) the node's storage runs on.
//!
//! Its clock can run fast or slow (`--clock-rate R`, see [`scaled`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft::cluster::sessions::{SessionLimits, Sessions};
use easyraft::discovery::{NodeAddress, StaticServiceDiscovery};
use easyraft::storage::{FileStorage, Options};
use easyraft::transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use easyraft::{AnyStorage, Membership, MembershipChange, NodeId, RaftConfig, RaftNode};
use examples::api::{bad, str_param, Node};
use examples::kv::KvStore;
use examples::serve::{serve, Api};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::faulty_disk::{Armed, DiskFaults, FaultyVfs};
use crate::error::TaskError;

/// What `cargo xtask chaos-node` runs.
#[derive(Clone, Debug)]
pub struct ChaosNodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// Every node: this one at its own Raft address, the others at their relays.
    pub peers: Vec<(NodeId, NodeAddress)>,
    /// The port of this node's API (kv and admin methods), on 127.0.0.1.
    pub api_port: u16,
    /// The founding voters (the same on every founding node); empty for a node that
    /// joins the running cluster (added as a learner by the leader).
    pub voters: Vec<NodeId>,
    /// The data directory (the log lives in a subdirectory named after the id).
    pub data_dir: PathBuf,
    /// The token clients and peers must present.
    pub token: String,
    /// How fast this node's clock runs against real time (1.0: exact).
    pub clock_rate: f64,
}

/// Parses `id=host:port`.
pub fn parse_peer(s: &str) -> Result<(NodeId, NodeAddress), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected id=host:port, got {s:?}"))?;
    let addr: NodeAddress = addr.parse().map_err(|e| format!("{e}"))?;
    if id.is_empty() {
        return Err(format!("empty node id in {s:?}"));
    }
    Ok((NodeId::new(id), addr))
}

/// Timing for a cluster on one busy machine whose processes get frozen and killed.
pub fn chaos_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(60),
        request_timeout: Duration::from_secs(3),
        snapshot_interval: 500,
        ..RaftConfig::default()
    }
}

/// `config` as a node whose clock runs at `rate` sees it: every duration it waits
/// (heartbeat interval, hence the tick, election timeout, request timeout, disk-stall
/// timeout) passes `rate` times faster in its clock, so takes `1 / rate` of the real
/// time. A rate of 2 makes a node campaign and heartbeat twice as eagerly as the
/// others; 0.5 makes a leader's heartbeats come at half the expected rate.
pub fn scaled(config: RaftConfig, rate: f64) -> RaftConfig {
    let rate = if rate.is_finite() && rate > 0.0 { rate } else { 1.0 };
    let s = |d: Duration| d.div_f64(rate);
    RaftConfig {
        election_timeout: s(config.election_timeout),
        heartbeat_interval: s(config.heartbeat_interval),
        request_timeout: s(config.request_timeout),
        disk_stall_timeout: s(config.disk_stall_timeout),
        ..config
    }
}

/// The admin API's context.
struct Admin {
    node: Node<Sessions<KvStore>>,
    disk: Arc<DiskFaults>,
}

fn ids(v: &std::collections::BTreeSet<NodeId>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn admin_api(admin: Admin) -> RpcModule<Admin> {
    let mut m = RpcModule::new(admin);
    let _ = m.register_async_method("admin_status", |_, a: Arc<Admin>, _| async move {
        let st = a.node.handle().status().await.map_err(|e| a.node.error(e))?;
        Ok::<_, ErrorObjectOwned>(json!({
            "id": st.id.to_string(),
            "role": st.role.to_string(),
            "term": st.term,
            "leader": st.leader.map(|l| l.to_string()),
            "commit": st.commit,
            "applied": st.applied,
            "voters": ids(&st.membership.voters),
            "voters_outgoing": ids(&st.membership.voters_outgoing),
            "learners": ids(&st.membership.learners),
        }))
    });
    let _ = m.register_async_method("admin_changeMembership", |params, a: Arc<Admin>, _| async move {
        let p: Value = params.parse()?;
        let changes = p["changes"]
            .as_array()
            .ok_or_else(|| bad("changes: expected an array"))?
            .iter()
            .map(|c| {
                let id = NodeId::new(str_param(c, "id")?);
                match c["op"].as_str() {
                    Some("addLearner") => Ok(MembershipChange::AddLearner(id)),
                    Some("addVoter") => Ok(MembershipChange::AddVoter(id)),
                    Some("promote") => Ok(MembershipChange::PromoteLearner(id)),
                    Some("remove") => Ok(MembershipChange::Remove(id)),
                    _ => Err(bad("op: addLearner, addVoter, promote or remove")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        a.node
            .handle()
            .change_membership(changes)
            .await
            .map_err(|e| a.node.error(e))?;
        Ok::<_, ErrorObjectOwned>(json!({ "ok": true }))
    });
    let _ = m.register_method("admin_diskFault", |params, a: &Admin, _| {
        let p: Value = params.parse()?;
        let ms = |name: &str| Duration::from_millis(p[name].as_u64().unwrap_or(0));
        let armed = match p["kind"].as_str() {
            Some("eio") => Armed::Eio,
            Some("enospc") => Armed::Enospc,
            Some("slow") => Armed::Slow {
                delay: ms("ms"),
                until: Instant::now() + ms("for_ms"),
            },
            _ => return Err(bad("kind: eio, enospc or slow")),
        };
        tracing::warn!(?armed, "disk fault armed");
        a.disk.arm(armed);
        Ok::<_, ErrorObjectOwned>(json!({ "ok": true }))
    });
    m
}

/// Runs the node until stdin closes (or the process is killed); an error when the
/// Raft node stops on its own.
pub async fn run(opts: ChaosNodeOptions) -> Result<(), TaskError> {
    let peers: BTreeMap<String, NodeAddress> = opts.peers.iter().map(|(id, a)| (id.to_string(), a.clone())).collect();
    let Some(me) = peers.get(opts.id.as_str()) else {
        return Err(format!("--peers must include this node ({})", opts.id).into());
    };
    let listen: std::net::SocketAddr = format!("{me}").parse()?;
    // Bound first: a client that connects while the node starts waits in the backlog.
    let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.api_port)).await?;
    let disk = Arc::new(DiskFaults::default());
    let discovery = Arc::new(StaticServiceDiscovery::new(peers.clone()));
    let mut cfg = JsonRpcConfig::new(listen, "chaos");
    cfg.token = Some(opts.token.clone());
    let transport = JsonRpcTransport::new(opts.id.as_str(), cfg, discovery);
    let vfs = Arc::new(FaultyVfs::new(disk.clone()));
    let storage = FileStorage::open_with_vfs(vfs, opts.data_dir.join(opts.id.as_str()), Options::default())?;
    let bootstrap = (!opts.voters.is_empty()).then(|| Membership::with_voters(opts.voters.iter().cloned()));
    let config = scaled(chaos_config(), opts.clock_rate);
    let handle = RaftNode::start(
        opts.id.clone(),
        config,
        Box::new(storage) as AnyStorage,
        Sessions::new(KvStore::default(), SessionLimits::default()),
        transport,
        bootstrap,
    )
    .await?;
    // The clients follow a not-leader error by the leader's id, not an address.
    let node = Node::new(handle.clone(), BTreeMap::new());
    let mut methods = examples::kv::rpc_for(node.clone());
    methods.merge(examples::sessions::rpc_for(node.clone()))?;
    methods.merge(admin_api(Admin { node, disk }))?;
    let api = Api {
        methods: methods.into(),
        handle: handle.clone(),
        token: Some(opts.token.clone()),
    };
    let server = tokio::spawn(serve(api_listener, Arc::new(api)));
    let mut view = handle.watch();
    let report = async move {
        loop {
            let v = view.borrow_and_update().clone();
            if !v.running {
                return;
            }
            let leader = v.leader.as_ref().map_or("-".to_string(), |l| l.to_string());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "role={} term={} leader={leader}", v.role, v.term);
            let _ = out.flush();
            drop(out);
            if view.changed().await.is_err() {
                return;
            }
        }
    };
    let orphaned = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let stopped = tokio::select! {
        () = report => true,
        () = orphaned => {
            tracing::info!(id = %opts.id, "stdin closed: the driver is gone, stopping");
            false
        }
    };
    server.abort();
    handle.kill().await;
    if stopped {
        return Err(format!("{}: the Raft node stopped (see the error above)", opts.id).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_rate_scales_every_wait() {
        let c = scaled(chaos_config(), 2.0);
        assert_eq!(c.election_timeout, Duration::from_millis(250));
        assert_eq!(c.heartbeat_interval, Duration::from_millis(30));
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        let slow = scaled(chaos_config(), 0.5);
        assert_eq!(slow.election_timeout, Duration::from_millis(1000));
        assert_eq!(scaled(chaos_config(), 0.0).election_timeout, Duration::from_millis(500));
    }
}
