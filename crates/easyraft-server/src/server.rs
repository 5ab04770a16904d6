//! One node per process: FileStorage in `data_dir`, WsTransport on `listen_peer`, the
//! client port on `listen_client`, and the node's life: bootstrap or join
//! (`bootstrap`, `join`), register its addresses in the directory (`register`), leave
//! on shutdown (`join`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use easyraft::core::Storage;
use easyraft::discovery::{discovery_from_url, NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use easyraft::storage::Options;
use easyraft::transport_ws::{WsConfig, WsTransport};
use easyraft::{FileStorage, Membership, NodeId, RaftHandle, RaftNode};
use examples::api::Node;
use jsonrpsee::RpcModule;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin::{self, Admin};
use crate::bootstrap;
use crate::client::Caller;
use crate::config::{Config, ConfigError, Service};
use crate::directory::{Directory, DirectoryDiscovery, MemberAddress, Members};
use crate::error::ServerError;
use crate::http::{self, ClientApi};
use crate::join;
use crate::machine::ServerMachine;
use crate::register::register;

/// A running node with its client port.
pub struct Server {
    config: Config,
    handle: RaftHandle<ServerMachine>,
    directory: Directory,
    client_addr: SocketAddr,
    /// The addresses this node advertises.
    address: MemberAddress,
    admin_token: Option<String>,
    /// Reaches other members' client ports.
    caller: Caller,
    /// The data directory had no state and this node is not in the bootstrap set:
    /// [`Server::join`] applies.
    joining: bool,
    tasks: Vec<JoinHandle<()>>,
}

fn read_token(key: &'static str, path: Option<&Path>) -> Result<Option<String>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let bad = |reason: String| ConfigError::TokenFile {
        key,
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("is empty".into()));
    }
    Ok(Some(token.to_string()))
}

fn storage_error(path: &Path, e: impl std::fmt::Display) -> ServerError {
    ServerError::Storage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl Server {
    /// Opens the data directory, starts the node and serves the client port. On an
    /// empty data directory, a node in the bootstrap set (`initial_cluster`, else the
    /// discovery set) founds the cluster with the others in it, unless `join` reaches
    /// a running cluster that no longer lists it; a node outside the set needs `join`.
    /// Call [`Server::join`] next.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        let peer_token = read_token("peer_token_file", config.peer_token_file.as_deref())?;
        let admin_token = read_token("admin_token_file", config.admin_token_file.as_deref())?;
        let (caller, client_tls) = match &config.client_tls {
            None => (Caller::new(None), None),
            Some(files) => (
                Caller::new(Some(files.trusted())),
                Some(crate::tls::client_port_tls(files)?),
            ),
        };
        let caller = caller.map_err(|reason| ConfigError::Invalid {
            key: "client_tls.ca".into(),
            reason,
        })?;
        let id = NodeId::new(&config.id);
        let mut me = MemberAddress {
            peer: config.peer_address(),
            client: Some(config.client_address()),
        };

        let directory = Directory::default();
        let seeds: Members = config
            .initial_cluster
            .0
            .iter()
            .map(|(id, peer)| {
                let addr = MemberAddress {
                    peer: peer.clone(),
                    client: None,
                };
                (id.clone(), addr)
            })
            .collect();
        directory.seed(seeds);
        let configured: Option<Arc<dyn ServiceDiscovery>> = match &config.discovery {
            Some(url) => Some(discovery_from_url(url)?),
            None if !config.initial_cluster.0.is_empty() => {
                let mut nodes = Vec::new();
                for (id, addr) in &config.initial_cluster.0 {
                    let a: NodeAddress = addr.parse().map_err(|e| ConfigError::Invalid {
                        key: "initial_cluster".into(),
                        reason: format!("member {id}: {e}"),
                    })?;
                    nodes.push((id.clone(), a));
                }
                Some(Arc::new(StaticServiceDiscovery::new(nodes)) as Arc<dyn ServiceDiscovery>)
            }
            None => None,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|e| storage_error(&config.data_dir, e))?;
        let storage =
            FileStorage::open(&config.data_dir, Options::default()).map_err(|e| storage_error(&config.data_dir, e))?;
        let init = storage
            .initial_state()
            .map_err(|e| storage_error(&config.data_dir, e))?;
        let last = storage.last_index().map_err(|e| storage_error(&config.data_dir, e))?;
        let fresh = init.hard_state == Default::default() && last == 0 && init.membership == Membership::default();
        // A fresh node named in the bootstrap set founds the cluster with the others in
        // it (even when `join` is set, so that every pod of a StatefulSet can be given
        // the same flags); one not in it joins through `join`.
        let (bootstrap, joining) = bootstrap::plan(
            &config,
            configured.as_ref(),
            &caller,
            admin_token.as_deref(),
            fresh,
            &mut me,
        )
        .await?;

        let listener = tokio::net::TcpListener::bind(config.listen_client)
            .await
            .map_err(|source| ServerError::Listen {
                key: "listen_client",
                addr: config.listen_client,
                source,
            })?;
        let client_addr = listener.local_addr().map_err(|source| ServerError::Listen {
            key: "listen_client",
            addr: config.listen_client,
            source,
        })?;

        let mut ws = WsConfig::new(config.listen_peer, config.cluster_id.clone());
        ws.token = peer_token.clone();
        if let Some(files) = &config.tls {
            ws.tls = Some(crate::tls::peer_tls(files)?);
        }
        let discovery = Arc::new(DirectoryDiscovery::new(configured, directory.clone()));
        let transport = WsTransport::new(id.clone(), ws, discovery);
        let raft = config.raft.clone();
        let machine = ServerMachine::new(directory.clone());
        let handle = RaftNode::start(id.clone(), raft, storage, machine, transport, bootstrap).await?;
        info!(%id, peer = %me.peer, client = %client_addr, fresh, joining, "node started");

        let lookup_dir = directory.clone();
        let node = Node::with_lookup(handle.clone(), Arc::new(move |id: &str| lookup_dir.client(id)));
        let mut methods = RpcModule::new(());
        for s in &config.services {
            let merged = match s {
                Service::Kv => methods.merge(examples::kv::rpc_for(node.clone())),
                Service::Lock => methods.merge(examples::lock::rpc_for(node.clone())),
                Service::Config => methods.merge(examples::config::rpc_for(node.clone())),
                Service::Registry => methods.merge(examples::registry::rpc_for(node.clone())),
                Service::Queue => methods.merge(examples::queue::rpc_for(node.clone())),
            };
            merged.map_err(|e| ServerError::Node(easyraft::Error::Internal(e.to_string())))?;
        }
        methods
            .merge(examples::sessions::rpc_for(node.clone()))
            .map_err(|e| ServerError::Node(easyraft::Error::Internal(e.to_string())))?;
        let admin = Admin {
            node,
            handle: handle.clone(),
            directory: directory.clone(),
            promote_lag: config.promote_lag,
            catch_up_timeout: config.catch_up_timeout,
            change: tokio::sync::Mutex::new(()),
            caller: caller.clone(),
        };
        methods
            .merge(admin::rpc(admin))
            .map_err(|e| ServerError::Node(easyraft::Error::Internal(e.to_string())))?;
        let api = Arc::new(ClientApi {
            methods: methods.into(),
            handle: handle.clone(),
            admin_token: admin_token.clone(),
            admin_insecure: config.admin_insecure,
            peer_token: peer_token.clone(),
            directory: directory.clone(),
            https: client_tls.is_some(),
        });
        let mut tasks = vec![tokio::spawn(http::serve(listener, api, client_tls))];
        tasks.push(tokio::spawn(register(
            handle.clone(),
            directory.clone(),
            me.clone(),
            peer_token,
            caller.clone(),
        )));
        Ok(Server {
            config,
            handle,
            directory,
            client_addr,
            address: me,
            admin_token,
            caller,
            joining,
            tasks,
        })
    }

    /// The node's handle.
    pub fn handle(&self) -> &RaftHandle<ServerMachine> {
        &self.handle
    }

    /// Where the client port is bound.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address this process reaches its own client port at: the advertised one
    /// (which a TLS certificate names), else the bound one on loopback.
    fn own_address(&self) -> String {
        if let Some(a) = &self.config.advertise_client {
            return a.clone();
        }
        let mut a = self.client_addr;
        if a.ip().is_unspecified() {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        a.to_string()
    }

    /// If this node is joining (`join` is set, the data directory was empty and the
    /// node is not in the bootstrap set): finds a member through `join` (client
    /// addresses, or a discovery URL naming the members' client ports), asks the
    /// cluster (following not-leader hints) to add this node as a learner, waits until
    /// it caught up, then has it promoted (unless `learner`), then has the member it
    /// `replaces` removed.
    pub async fn join(&self) -> Result<(), ServerError> {
        let Some(join) = self.config.join.clone() else {
            return Ok(());
        };
        if !self.joining {
            return Ok(());
        }
        join::join(
            &self.caller,
            &self.config,
            &join,
            &self.address,
            &self.directory,
            self.admin_token.as_deref(),
        )
        .await
    }

    /// Leaves the cluster: hands leadership over first if this node leads, then has the
    /// leader remove it.
    pub async fn leave(&self) -> Result<(), ServerError> {
        let own = self.own_address();
        let token = self.admin_token.as_deref();
        join::leave(&self.caller, &self.handle, &own, &self.config.id, token).await
    }

    /// Stops the client port and the node.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.handle.shutdown().await;
    }
}

/// Runs a server until SIGTERM or Ctrl-C: start, join if asked, serve, leave if
/// `leave_on_shutdown`, stop.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let leave = config.leave_on_shutdown;
    let server = Server::start(config).await?;
    if let Err(e) = server.join().await {
        server.shutdown().await;
        return Err(e);
    }
    wait_for_signal().await;
    if leave {
        if let Err(e) = server.leave().await {
            warn!(error = %e, "could not leave the cluster");
        }
    }
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM"),
                    _ = tokio::signal::ctrl_c() => info!("interrupted"),
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
