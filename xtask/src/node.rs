//! `cargo xtask node`: one key-value node per process, until Ctrl-C.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use easyraft::prelude::*;
use easyraft::transport_ws::{WsConfig, WsTransport};
use easyraft::{storage_for, Membership};
use tokio::io::AsyncBufReadExt;

use crate::demo::DemoError;
use crate::kv::{Kv, KvAnswer, KvCommand, KvQuery};

/// How to run one node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node's id; must be one of `peers`.
    pub id: NodeId,
    /// The port to listen on (by default the one `peers` gives for `id`).
    pub port: Option<u16>,
    /// Every founding member and its address, this node included.
    pub peers: Vec<(NodeId, NodeAddress)>,
    /// Where the log lives (`<data_dir>/<id>`).
    pub data_dir: PathBuf,
    /// The cluster token.
    pub token: Option<String>,
    /// The cluster id.
    pub cluster_id: String,
    /// Listen on all interfaces instead of the host `peers` gives for `id`.
    pub listen_any: bool,
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

/// Runs the node until Ctrl-C; lines on stdin (`set k v`, `get k`, `del k`,
/// `status`) act on it.
pub async fn run(opts: NodeOptions) -> Result<(), DemoError> {
    let own = opts
        .peers
        .iter()
        .find(|(id, _)| *id == opts.id)
        .map(|(_, a)| a.clone())
        .ok_or_else(|| format!("--peers must include this node ({})", opts.id))?;
    let port = opts.port.unwrap_or(own.port);
    if port != own.port {
        return Err(format!(
            "--port {port} differs from the port --peers gives for {} ({})",
            opts.id, own
        )
        .into());
    }
    let listen: SocketAddr = if opts.listen_any {
        ([0, 0, 0, 0], port).into()
    } else {
        (own.host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| format!("{own} does not resolve"))?
    };
    let voters: Vec<NodeId> = opts.peers.iter().map(|(id, _)| id.clone()).collect();
    let discovery = Arc::new(StaticServiceDiscovery::new(opts.peers.clone()));
    let mut cfg = WsConfig::new(listen, opts.cluster_id.clone());
    cfg.token = opts.token.clone();
    let transport = WsTransport::new(opts.id.clone(), cfg, discovery);
    let storage = storage_for(Some(&opts.data_dir), &opts.id)?;
    let node = RaftNode::start(
        opts.id.clone(),
        RaftConfig::default(),
        storage,
        Kv::default(),
        transport,
        Some(Membership::with_voters(voters)),
    )
    .await?;

    println!(
        "{} listening on ws://{listen}/raft/  (GET http://{listen}/health, /status)",
        opts.id
    );
    for (id, addr) in opts.peers.iter().filter(|(id, _)| *id != opts.id) {
        println!("  peer {id} at {addr}");
    }
    println!(
        "  data: {}  token: {}",
        opts.data_dir.join(opts.id.as_str()).display(),
        if opts.token.is_some() { "set" } else { "none" }
    );
    println!("  type `set KEY VALUE`, `get KEY`, `del KEY` or `status`; Ctrl-C stops the node");

    let mut events = node.events();
    let me = opts.id.clone();
    let printer = tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut last = None;
        loop {
            match events.recv().await {
                Ok(RaftEvent::LeaderElected { leader, term }) => println!("[{me}] leader is {leader} (term {term})"),
                Ok(RaftEvent::StateChanged { role, term }) => {
                    if last.replace((role, term)) != Some((role, term)) {
                        println!("[{me}] now {role} (term {term})");
                    }
                }
                Ok(RaftEvent::SnapshotInstalled { index }) => println!("[{me}] installed a snapshot at {index}"),
                Ok(RaftEvent::EntryApplied { .. }) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });

    let console = {
        let node = node.clone();
        async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                command(&node, line.trim()).await;
            }
            // stdin closed (e.g. started in the background): keep serving.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = console => {}
    }
    println!("[{}] stopping", opts.id);
    node.shutdown().await;
    printer.abort();
    Ok(())
}

async fn command(node: &RaftHandle<Kv>, line: &str) {
    let mut words = line.splitn(3, ' ');
    let result = match (words.next(), words.next(), words.next()) {
        (Some("set"), Some(k), Some(v)) => node
            .propose(KvCommand::Set {
                key: k.into(),
                value: v.into(),
            })
            .await
            .map(|old| format!("ok (was {old:?})")),
        (Some("del"), Some(k), None) => node
            .propose(KvCommand::Delete { key: k.into() })
            .await
            .map(|old| format!("ok (was {old:?})")),
        (Some("get"), Some(k), None) => node.read(KvQuery::Get(k.into())).await.map(|a| match a {
            KvAnswer::Value(v) => format!("{v:?}"),
            KvAnswer::All(m) => format!("{m:?}"),
        }),
        (Some("status"), None, None) => node.status().await.map(|s| format!("{s:?}")),
        (None | Some(""), ..) => return,
        _ => Ok("commands: set KEY VALUE | get KEY | del KEY | status".into()),
    };
    match result {
        Ok(s) => println!("{s}"),
        Err(e) if e.is_not_leader() => println!(
            "not the leader; send writes to {}",
            e.leader_hint().map_or("the leader (unknown yet)", |l| l.as_str())
        ),
        Err(e) => println!("error: {e}"),
    }
}
