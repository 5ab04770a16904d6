//! `WebSocketRaftCluster` and `JsonRpcRaftCluster`: cluster managers over
//! the two network transports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use raft_cluster::{Cluster, Error, RaftConfig, Result, StateMachine};
use raft_core::NodeId;
use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_storage::{FileStorage, LogStore, Options};
use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use raft_transport_ws::{Encoding, WsConfig, WsTransport};

/// A cluster of nodes in this process talking over WebSocket (each node serves
/// `ws://host:port/raft/`, Raft traffic only; health and status come from each
/// node's [`RaftHandle`](raft_cluster::RaftHandle): `view`, `status`, `metrics`).
pub type WebSocketRaftCluster<SM> = Cluster<SM, AnyStorage, WsTransport>;

/// How a networked cluster ([`WebSocketRaftCluster`], [`JsonRpcRaftCluster`]) runs its
/// nodes: what both transports share, and `transport`, the settings of one of them
/// ([`WsSettings`] or [`JsonRpcSettings`]), so no field applies to one transport only.
#[derive(Clone, Debug)]
pub struct NetClusterOptions<T> {
    /// Raft timing and limits.
    pub raft: RaftConfig,
    /// The cluster id checked at every handshake.
    pub cluster_id: String,
    /// The shared token every connection must present.
    pub token: Option<String>,
    /// Keep each node's log in `data_dir/<node id>` (durable); `None` keeps it in memory.
    pub data_dir: Option<PathBuf>,
    /// Listen on all interfaces (`0.0.0.0:port`) instead of the discovered host.
    pub listen_any: bool,
    /// The transport's own settings.
    pub transport: T,
}

impl<T: Default> Default for NetClusterOptions<T> {
    fn default() -> Self {
        NetClusterOptions {
            raft: RaftConfig::default(),
            cluster_id: "easyraft".into(),
            token: None,
            data_dir: None,
            listen_any: false,
            transport: T::default(),
        }
    }
}

/// The options of a [`WebSocketRaftCluster`].
pub type WsClusterOptions = NetClusterOptions<WsSettings>;

/// The options of a [`JsonRpcRaftCluster`].
pub type JsonRpcClusterOptions = NetClusterOptions<JsonRpcSettings>;

/// What only the WebSocket transport has.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WsSettings {
    /// Binary postcard frames (the default) or JSON text frames between nodes.
    pub encoding: Encoding,
}

impl WsSettings {
    /// These settings with frames in `encoding`.
    pub fn encoding(encoding: Encoding) -> Self {
        WsSettings { encoding }
    }
}

/// What only the JSON-RPC transport has: nothing yet (it always speaks JSON).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct JsonRpcSettings {}

/// A transport a networked cluster can be built with.
pub trait NetTransport: raft_cluster::Transport + Sized {
    /// The transport's own settings ([`NetClusterOptions::transport`]).
    type Settings: Clone + Default + Send + Sync + 'static;

    /// The transport of node `id`, listening on `listen`, finding peers through
    /// `discovery`.
    fn build(
        id: &NodeId,
        listen: SocketAddr,
        options: &NetClusterOptions<Self::Settings>,
        discovery: Arc<dyn ServiceDiscovery>,
    ) -> Self;
}

impl NetTransport for WsTransport {
    type Settings = WsSettings;

    fn build(id: &NodeId, listen: SocketAddr, o: &WsClusterOptions, discovery: Arc<dyn ServiceDiscovery>) -> Self {
        let mut cfg = WsConfig::new(listen, o.cluster_id.clone());
        cfg.token = o.token.clone();
        cfg.encoding = o.transport.encoding;
        WsTransport::new(id.clone(), cfg, discovery)
    }
}

impl NetTransport for JsonRpcTransport {
    type Settings = JsonRpcSettings;

    fn build(id: &NodeId, listen: SocketAddr, o: &JsonRpcClusterOptions, discovery: Arc<dyn ServiceDiscovery>) -> Self {
        let mut cfg = JsonRpcConfig::new(listen, o.cluster_id.clone());
        cfg.token = o.token.clone();
        JsonRpcTransport::new(id.clone(), cfg, discovery)
    }
}

/// A cluster of nodes in this process talking JSON-RPC 2.0: each node serves Raft's
/// methods over HTTP and WebSocket on one port.
pub type JsonRpcRaftCluster<SM> = Cluster<SM, AnyStorage, JsonRpcTransport>;

/// Constructors for the networked clusters ([`WebSocketRaftCluster`],
/// [`JsonRpcRaftCluster`]), from node ids and a discovery, or from
/// `(node_id, port)` pairs on localhost.
pub trait NetworkClusterExt<SM: StateMachine>: Sized {
    /// The cluster's options: [`WsClusterOptions`] or [`JsonRpcClusterOptions`].
    type Options;

    /// Starts `ids` as a new cluster; each node listens at the address `discovery`
    /// gives for it and finds its peers the same way.
    fn start_with_discovery<I, N>(
        ids: I,
        discovery: Arc<dyn ServiceDiscovery>,
        options: Self::Options,
        make: impl Fn(&NodeId) -> SM + Send + Sync + 'static,
    ) -> impl std::future::Future<Output = Result<Self>>
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>;

    /// The short form: `(node_id, port)` pairs on 127.0.0.1.
    fn start_localhost<I, N>(
        nodes: I,
        options: Self::Options,
        make: impl Fn(&NodeId) -> SM + Send + Sync + 'static,
    ) -> impl std::future::Future<Output = Result<Self>>
    where
        I: IntoIterator<Item = (N, u16)>,
        N: Into<NodeId>,
    {
        let nodes: Vec<(NodeId, u16)> = nodes.into_iter().map(|(n, p)| (n.into(), p)).collect();
        let ids: Vec<NodeId> = nodes.iter().map(|(n, _)| n.clone()).collect();
        let discovery: Arc<dyn ServiceDiscovery> = Arc::new(StaticServiceDiscovery::localhost(nodes));
        Self::start_with_discovery(ids, discovery, options, make)
    }
}

impl<SM: StateMachine, T: NetTransport> NetworkClusterExt<SM> for Cluster<SM, AnyStorage, T> {
    type Options = NetClusterOptions<T::Settings>;

    async fn start_with_discovery<I, N>(
        ids: I,
        discovery: Arc<dyn ServiceDiscovery>,
        options: NetClusterOptions<T::Settings>,
        make: impl Fn(&NodeId) -> SM + Send + Sync + 'static,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>,
    {
        let ids: Vec<NodeId> = ids.into_iter().map(Into::into).collect();
        let mut listen = BTreeMap::new();
        for id in &ids {
            let addr = discovery
                .get_node_address(id)
                .await
                .map_err(|e| Error::Transport(raft_cluster::TransportError::Other(Box::new(e))))?;
            listen.insert(id.clone(), listen_addr(&addr, options.listen_any)?);
        }
        let data_dir = options.data_dir.clone();
        Cluster::start(
            ids,
            options.raft.clone(),
            move |id| storage_for(data_dir.as_ref(), id),
            make,
            move |id| {
                let addr = listen.get(id).copied().unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
                T::build(id, addr, &options, discovery.clone())
            },
        )
        .await
    }
}

/// Any [`LogStore`], boxed (a storage chosen at run time: memory or disk), so a
/// cluster type does not depend on where its nodes keep their log. A box of a
/// storage is a storage: make one with `Box::new(storage)`.
pub type AnyStorage = Box<dyn LogStore + Send>;

/// The storage for one node: a directory under `data_dir`, or memory.
pub fn storage_for(data_dir: Option<&PathBuf>, id: &NodeId) -> Result<AnyStorage> {
    match data_dir {
        Some(dir) => match FileStorage::open(dir.join(id.as_str()), Options::default()) {
            Ok(storage) => Ok(Box::new(storage)),
            Err(e) => Err(Error::Storage(Box::new(e))),
        },
        None => Ok(Box::new(raft_core::MemStorage::default())),
    }
}

fn listen_addr(addr: &NodeAddress, any: bool) -> Result<std::net::SocketAddr> {
    if any {
        return Ok(([0, 0, 0, 0], addr.port).into());
    }
    use std::net::ToSocketAddrs;
    (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::Transport(raft_cluster::TransportError::Unreachable {
                peer: NodeId::new(addr.to_string()),
                reason: "address does not resolve".into(),
            })
        })
}
