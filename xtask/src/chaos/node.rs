//! `cargo xtask chaos-node`: one node of the chaos cluster, a process of its own.
//!
//! It serves the replicated KV (`examples::kv`) over the JSON-RPC transport, with the
//! file storage (fsync on every append) in its data directory, and finds its peers at
//! the driver's relays. It reports every change of role on stdout as
//! `role=ROLE term=TERM leader=ID` (how the driver knows whom to kill), and exits when
//! its stdin closes, so a driver that dies takes its nodes with it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use easyraft::discovery::NodeAddress;
use easyraft::{NodeId, RaftConfig};
use examples::kv::KvStore;
use examples::runner::{run_node, NodeSpec};
use tokio::io::AsyncReadExt;

use crate::demo::DemoError;

/// What `cargo xtask chaos-node` runs.
#[derive(Clone, Debug)]
pub struct ChaosNodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// Every node: this one at its own address, the others at their relays.
    pub peers: Vec<(NodeId, NodeAddress)>,
    /// The data directory (the log lives in a subdirectory named after the id).
    pub data_dir: PathBuf,
    /// The token clients and peers must present.
    pub token: String,
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

/// Runs the node until stdin closes (or the process is killed).
pub async fn run(opts: ChaosNodeOptions) -> Result<(), DemoError> {
    let peers: BTreeMap<String, NodeAddress> = opts.peers.iter().map(|(id, a)| (id.to_string(), a.clone())).collect();
    if !peers.contains_key(opts.id.as_str()) {
        return Err(format!("--peers must include this node ({})", opts.id).into());
    }
    let spec = NodeSpec {
        id: opts.id.to_string(),
        peers,
        data_dir: Some(opts.data_dir.clone()),
        token: Some(opts.token.clone()),
        cluster_id: "chaos".into(),
    };
    let handle = run_node(spec, KvStore::default(), chaos_config(), examples::kv::rpc).await?;
    let mut view = handle.watch();
    let report = async move {
        loop {
            let v = view.borrow_and_update().clone();
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
    tokio::select! {
        () = report => {}
        () = orphaned => tracing::info!(id = %opts.id, "stdin closed: the driver is gone, stopping"),
    }
    handle.kill().await;
    Ok(())
}
