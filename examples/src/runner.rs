//! Running the services: one node per process ([`run_node`], used by the binaries),
//! or a whole local cluster in one process ([`LocalCluster`], used by tests and the
//! demo), every node serving Raft and the service's API on one JSON-RPC port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use easyraft::discovery::{NodeAddress, StaticServiceDiscovery};
use easyraft::{storage_for, AnyStorage, Cluster, Membership, NodeId, RaftConfig, RaftHandle, RaftNode, StateMachine};
use jsonrpsee::RpcModule;
use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};

use crate::api::Node;

/// Builds a service's API for a node.
pub type ApiBuilder<SM> = fn(Node<SM>) -> RpcModule<Node<SM>>;

/// One node of a service.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// This node's id.
    pub id: String,
    /// Every founding node's id and address (this node included).
    pub peers: BTreeMap<String, NodeAddress>,
    /// Where to keep the log (`None`: memory).
    pub data_dir: Option<PathBuf>,
    /// The cluster token.
    pub token: Option<String>,
    /// The cluster id.
    pub cluster_id: String,
}

fn transport<SM: StateMachine>(
    spec: &NodeSpec,
    listen: SocketAddr,
    slot: Node<SM>,
    api: ApiBuilder<SM>,
) -> JsonRpcTransport {
    let discovery = Arc::new(StaticServiceDiscovery::new(spec.peers.clone()));
    let mut cfg = JsonRpcConfig::new(listen, spec.cluster_id.clone());
    cfg.token = spec.token.clone();
    JsonRpcTransport::new(spec.id.as_str(), cfg, discovery).with_api(api(slot))
}

fn addresses(peers: &BTreeMap<String, NodeAddress>) -> BTreeMap<String, String> {
    peers.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

/// Starts one node of a service in this process and returns its handle.
pub async fn run_node<SM: StateMachine>(
    spec: NodeSpec,
    sm: SM,
    config: RaftConfig,
    api: ApiBuilder<SM>,
) -> easyraft::Result<RaftHandle<SM>> {
    let me = spec
        .peers
        .get(&spec.id)
        .cloned()
        .unwrap_or_else(|| NodeAddress::new("127.0.0.1", 0));
    let listen: SocketAddr = format!("{me}")
        .parse()
        .unwrap_or_else(|_| ([0, 0, 0, 0], me.port).into());
    let slot = Node::new(addresses(&spec.peers));
    let t = transport(&spec, listen, slot.clone(), api);
    let storage = storage_for(spec.data_dir.as_ref(), &NodeId::new(&spec.id))?;
    let members = Membership::with_voters(spec.peers.keys().map(String::as_str));
    let handle = RaftNode::start(spec.id.as_str(), config, storage, sm, t, Some(members)).await?;
    slot.set(handle.clone());
    Ok(handle)
}

/// A whole cluster of a service in one process, on loopback ports.
pub struct LocalCluster<SM: StateMachine> {
    /// The nodes.
    pub cluster: Cluster<SM, AnyStorage, JsonRpcTransport>,
    /// Each node's JSON-RPC port.
    pub ports: BTreeMap<String, u16>,
    slots: Arc<Mutex<BTreeMap<NodeId, Node<SM>>>>,
}

impl<SM: StateMachine + Default> LocalCluster<SM> {
    /// Starts `n` nodes (`node1`..) on free loopback ports, logs under `data_dir`.
    pub async fn start(
        n: usize,
        data_dir: Option<PathBuf>,
        config: RaftConfig,
        api: ApiBuilder<SM>,
    ) -> easyraft::Result<Self> {
        let listeners: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .map_err(|e| easyraft::Error::Transport(easyraft::TransportError::Other(Box::new(e))))?;
        let ports: BTreeMap<String, u16> = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("node{}", i + 1), l.local_addr().map(|a| a.port()).unwrap_or(0)))
            .collect();
        drop(listeners);
        let peers: BTreeMap<String, NodeAddress> = ports
            .iter()
            .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p)))
            .collect();
        let slots: Arc<Mutex<BTreeMap<NodeId, Node<SM>>>> = Arc::default();
        let (s, dir) = (slots.clone(), data_dir.clone());
        let spec = NodeSpec {
            id: String::new(),
            peers: peers.clone(),
            data_dir,
            token: Some("local-token".into()),
            cluster_id: "local".into(),
        };
        let cluster = Cluster::start(
            ports.keys().cloned(),
            config,
            move |id| storage_for(dir.as_ref(), id),
            |_| SM::default(),
            move |id| {
                let slot = Node::new(addresses(&peers));
                if let Ok(mut m) = s.lock() {
                    m.insert(id.clone(), slot.clone());
                }
                let listen = SocketAddr::from(([127, 0, 0, 1], peers.get(id.as_str()).map_or(0, |a| a.port)));
                transport(
                    &NodeSpec {
                        id: id.to_string(),
                        ..spec.clone()
                    },
                    listen,
                    slot,
                    api,
                )
            },
        )
        .await?;
        let local = LocalCluster { cluster, ports, slots };
        local.bind_handles();
        Ok(local)
    }

    /// Gives every (re)started node's API its handle.
    fn bind_handles(&self) {
        if let Ok(slots) = self.slots.lock() {
            for h in self.cluster.nodes() {
                if let Some(slot) = slots.get(h.id()) {
                    slot.set(h.clone());
                }
            }
        }
    }

    /// Restarts a node (after `cluster.kill`), re-binding its API.
    pub async fn restart(&mut self, id: &str) -> easyraft::Result<()> {
        self.cluster.restart(id).await?;
        self.bind_handles();
        Ok(())
    }
}

/// The command line shared by the three binaries.
pub mod cli {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::ExitCode;

    use clap::Parser;
    use easyraft::discovery::NodeAddress;
    use easyraft::{RaftConfig, StateMachine};

    use super::{run_node, ApiBuilder, NodeSpec};

    /// One node of an easyraft service.
    #[derive(Parser, Debug)]
    struct Args {
        /// This node's id (one of --peers).
        #[arg(long)]
        id: String,
        /// Every founding node: `node1=127.0.0.1:5001,node2=127.0.0.1:5002,...`.
        #[arg(long, value_delimiter = ',')]
        peers: Vec<String>,
        /// Keep the log here (durable); memory when absent.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The cluster token clients and peers must present.
        #[arg(long)]
        token: Option<String>,
        /// The cluster id.
        #[arg(long, default_value = "easyraft")]
        cluster_id: String,
    }

    fn parse_peers(peers: &[String]) -> Result<BTreeMap<String, NodeAddress>, String> {
        peers
            .iter()
            .map(|p| {
                let (id, addr) = p
                    .split_once('=')
                    .ok_or_else(|| format!("expected id=host:port, got {p:?}"))?;
                let addr: NodeAddress = addr.parse().map_err(|e| format!("{id}: {e}"))?;
                Ok((id.to_string(), addr))
            })
            .collect()
    }

    /// Parses the command line, runs the node until Ctrl-C.
    pub fn main<SM: StateMachine>(sm: SM, api: ApiBuilder<SM>) -> ExitCode {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .init();
        let args = Args::parse();
        let peers = match parse_peers(&args.peers) {
            Ok(p) if p.contains_key(&args.id) => p,
            Ok(_) => {
                eprintln!("error: --id {} is not one of --peers", args.id);
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("error: --peers: {e}");
                return ExitCode::from(2);
            }
        };
        let spec = NodeSpec {
            id: args.id,
            peers,
            data_dir: args.data_dir,
            token: args.token,
            cluster_id: args.cluster_id,
        };
        let rt = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        rt.block_on(async move {
            match run_node(spec, sm, RaftConfig::default(), api).await {
                Ok(handle) => {
                    let _ = tokio::signal::ctrl_c().await;
                    handle.shutdown().await;
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        })
    }
}
