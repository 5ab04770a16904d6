//! A whole local cluster of a service in one process ([`LocalCluster`], used by tests,
//! benches and the demo): every node has a Raft port (the JSON-RPC transport, `raft_*`
//! methods, peers only) and an API port ([`crate::serve`]: the service's methods over
//! HTTP JSON-RPC and `GET /health`, `/status`, `/metrics`, built on the node's handle).
//! One node per process is `easyraft-server`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use easyraft::discovery::{NodeAddress, StaticServiceDiscovery};
use easyraft::{storage_for, AnyStorage, Cluster, RaftConfig, StateMachine, TransportError};
use jsonrpsee::RpcModule;
use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::Node;
use crate::serve::{serve, Api};

/// Builds a service's API for a node.
pub type ApiBuilder<SM> = fn(Node<SM>) -> RpcModule<Node<SM>>;

/// The token a [`LocalCluster`]'s nodes want from peers and clients
/// (`Authorization: Bearer local-token`).
pub const TOKEN: &str = "local-token";

/// The API servers of a cluster, stopped when it goes.
#[derive(Default)]
struct Servers(BTreeMap<String, JoinHandle<()>>);

impl Drop for Servers {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// A whole cluster of a service in one process, on loopback ports.
pub struct LocalCluster<SM: StateMachine> {
    /// The nodes.
    pub cluster: Cluster<SM, AnyStorage, JsonRpcTransport>,
    /// Each node's API port: what clients use (JSON-RPC over HTTP `POST /` with
    /// [`TOKEN`], and `GET /health`, `/status`, `/metrics`).
    pub ports: BTreeMap<String, u16>,
    /// Each node's Raft port (the JSON-RPC transport; peers only).
    pub raft_ports: BTreeMap<String, u16>,
    api: ApiBuilder<SM>,
    servers: Servers,
}

fn io_error(e: std::io::Error) -> easyraft::Error {
    easyraft::Error::Transport(TransportError::Other(Box::new(e)))
}

/// `n` listeners on free loopback ports.
fn listeners(n: usize) -> easyraft::Result<Vec<std::net::TcpListener>> {
    (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(io_error)
}

fn port_map(listeners: &[std::net::TcpListener]) -> BTreeMap<String, u16> {
    listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("node{}", i + 1), l.local_addr().map(|a| a.port()).unwrap_or(0)))
        .collect()
}

impl<SM: StateMachine + Default> LocalCluster<SM> {
    /// Starts `n` nodes (`node1`..) on free loopback ports, logs under `data_dir`,
    /// each serving the API `api` builds on its own port.
    pub async fn start(
        n: usize,
        data_dir: Option<PathBuf>,
        config: RaftConfig,
        api: ApiBuilder<SM>,
    ) -> easyraft::Result<Self> {
        let raft = listeners(n)?;
        let raft_ports = port_map(&raft);
        // The transports bind their own ports when the nodes start.
        drop(raft);
        let api_listeners = listeners(n)?;
        let ports = port_map(&api_listeners);
        let discovery = Arc::new(StaticServiceDiscovery::new(
            raft_ports
                .iter()
                .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p))),
        ));
        let listen = raft_ports.clone();
        let cluster = Cluster::start(
            raft_ports.keys().cloned(),
            config,
            move |id| storage_for(data_dir.as_ref(), id),
            |_| SM::default(),
            move |id| {
                let port = listen.get(id.as_str()).copied().unwrap_or(0);
                let cfg = JsonRpcConfig::new(SocketAddr::from(([127, 0, 0, 1], port)), "local").with_token(TOKEN);
                JsonRpcTransport::new(id.clone(), cfg, discovery.clone())
            },
        )
        .await?;
        let mut local = LocalCluster {
            cluster,
            ports,
            raft_ports,
            api,
            servers: Servers::default(),
        };
        for (id, l) in local.ports.clone().keys().zip(api_listeners) {
            l.set_nonblocking(true).map_err(io_error)?;
            local.serve(id, TcpListener::from_std(l).map_err(io_error)?);
        }
        Ok(local)
    }

    /// Serves node `id`'s API on `listener`, built on its current handle.
    fn serve(&mut self, id: &str, listener: TcpListener) {
        let Some(handle) = self.cluster.node(id).cloned() else {
            return;
        };
        let addresses = self
            .ports
            .iter()
            .map(|(id, p)| (id.clone(), format!("127.0.0.1:{p}")))
            .collect();
        let api = Api {
            methods: (self.api)(Node::new(handle.clone(), addresses)).into(),
            handle,
            token: Some(TOKEN.into()),
        };
        let task = tokio::spawn(serve(listener, Arc::new(api)));
        if let Some(old) = self.servers.0.insert(id.to_string(), task) {
            old.abort();
        }
    }

    /// Kills node `id` like a crash (`Cluster::kill`); its API port closes too.
    pub async fn kill(&mut self, id: &str) {
        self.cluster.kill(id).await;
        if let Some(task) = self.servers.0.remove(id) {
            task.abort();
            let _ = task.await;
        }
    }

    /// Restarts a node (after [`kill`](Self::kill)) and serves its API again on its
    /// port, built on the new handle.
    pub async fn restart(&mut self, id: &str) -> easyraft::Result<()> {
        self.cluster.restart(id).await?;
        let port = self.ports.get(id).copied().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(io_error(e)),
            }
        };
        self.serve(id, listener);
        Ok(())
    }
}
