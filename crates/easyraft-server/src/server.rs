//! One node per process: FileStorage in `data_dir`, WsTransport on `listen_peer`, the
//! client port on `listen_client`, and the node's life: bootstrap or join, register
//! its addresses in the directory, leave on shutdown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use easyraft::core::Storage;
use easyraft::discovery::{discovery_from_url, DiscoveryError, NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use easyraft::storage::Options;
use easyraft::transport_ws::{WsConfig, WsTransport};
use easyraft::{FileStorage, Membership, NodeId, RaftHandle, RaftNode};
use examples::api::Node;
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::admin::{self, Admin};
use crate::client::Caller;
use crate::config::{Config, Service};
use crate::directory::{Directory, DirectoryCommand, DirectoryDiscovery, MemberAddress, Members};
use crate::error::{ConfigError, ServerError};
use crate::http::{self, ClientApi};
use crate::machine::{ServerCommand, ServerMachine};
use crate::rpc_codes::MEMBERSHIP_REFUSED;

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
        let mut joining = false;
        let registered = fresh && config.bootstrap_expect.is_some();
        if registered {
            advertise(&config, configured.as_ref(), &mut me).await;
        }
        let bootstrap = if !fresh {
            info!(data_dir = %config.data_dir.display(), "the data directory has state: bootstrap and join settings are ignored");
            None
        } else {
            let set = bootstrap_set(&config, configured.as_ref()).await?;
            let in_set = set.as_ref().is_some_and(|(_, s)| s.contains(config.id.as_str()));
            // What a running cluster reached through `join` says of this node, asked
            // before the node starts (once started, a leader that still counts it
            // would replicate to it): a member that lost its data is refused; a founder
            // it does not list was removed and joins.
            let listed = match &config.join {
                Some(join) => match running_cluster(&caller, join, &config.id, admin_token.as_deref()).await {
                    Some((at, view)) => Some(refuse_lost_data(&at, &view, &config.id)?),
                    None => None,
                },
                None => None,
            };
            let removed = in_set && listed == Some(false);
            if removed {
                info!("the running cluster does not list this node (removed): joining instead of bootstrapping");
            }
            match set {
                Some((_, set)) if in_set && !removed => {
                    if config.join.is_some() {
                        info!(set = ?set, "this node is in the bootstrap set: bootstrapping (join is only for nodes outside it)");
                    }
                    Some(Membership::with_voters(set.iter().map(String::as_str)))
                }
                _ if config.join.is_some() => {
                    joining = true;
                    None
                }
                Some((key, set)) => {
                    return Err(ConfigError::Invalid {
                        key: key.into(),
                        reason: format!(
                            "the bootstrap set {set:?} does not include this node ({id}), and no join is given"
                        ),
                    }
                    .into())
                }
                None => {
                    return Err(ConfigError::Invalid {
                        key: "initial_cluster".into(),
                        reason: "a new node needs initial_cluster, discovery or join".into(),
                    }
                    .into())
                }
            }
        };
        // Discovery backends where nodes register themselves (etcd) count this node
        // only after it registered: with `bootstrap_expect`, before the set is taken.
        if !registered {
            advertise(&config, configured.as_ref(), &mut me).await;
        }

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
        let token = self.admin_token.as_deref();
        let deadline = tokio::time::Instant::now() + self.config.catch_up_timeout;
        // The members' addresses, to answer the leader before this node has the log.
        let (at, members) = self.first_member(&join, deadline).await?;
        let fail = |reason: String| ServerError::Join {
            address: at.clone(),
            reason,
        };
        let mut seeds = Members::new();
        for m in members["members"].as_array().into_iter().flatten() {
            if let (Some(id), Some(peer)) = (m["id"].as_str(), m["peer"].as_str()) {
                let addr = MemberAddress {
                    peer: peer.to_string(),
                    client: m["client"].as_str().map(str::to_string),
                };
                seeds.insert(id.to_string(), addr);
            }
        }
        self.directory.seed(seeds);
        let me = json!({
            "id": self.config.id,
            "peer": self.address.peer,
            "client": self.address.client,
        });
        info!(through = %at, "asking the cluster to add this node as a learner");
        retry_refusals(
            &self.caller,
            &at,
            "admin_add_learner",
            &me,
            token,
            deadline,
            (&["already_member"], &["change_in_progress"]),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        if self.config.learner {
            info!("added as a learner; staying one (learner = true)");
            return Ok(());
        }
        let id = json!({ "id": self.config.id });
        retry_refusals(
            &self.caller,
            &at,
            "admin_promote",
            &id,
            token,
            deadline,
            (&["already_member"], &["change_in_progress", "not_caught_up"]),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        info!("promoted to voter");
        if let Some(old) = &self.config.replaces {
            retry_refusals(
                &self.caller,
                &at,
                "admin_remove",
                &json!({ "id": old }),
                token,
                deadline,
                (&["unknown_member"], &["change_in_progress"]),
            )
            .await
            .map_err(|e| fail(format!("promoted, but removing {old} failed: {e}")))?;
            info!(replaced = %old, "took the place of the old member");
        }
        Ok(())
    }

    /// The first member named by `join` that answers `admin_members` (through its
    /// leader): its client address and the answer. Asks every candidate in turn; a
    /// discovery URL is resolved and asked again until `deadline` (the records of a
    /// just-created Service lag), a list of addresses once (a process supervisor
    /// restarts the node).
    async fn first_member(&self, join: &str, deadline: tokio::time::Instant) -> Result<(String, Value), ServerError> {
        let token = self.admin_token.as_deref();
        loop {
            let last_error = match join_candidates(join, &self.config.id).await {
                Ok(candidates) if candidates.is_empty() => "it names no member other than this node".to_string(),
                Ok(candidates) => {
                    let mut last = String::new();
                    for at in candidates {
                        // A short wait per candidate: the next one may be the live one.
                        let until = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
                        match self
                            .caller
                            .call_leader(&at, "admin_members", &json!({}), token, until)
                            .await
                        {
                            Ok(members) => return Ok((at, members)),
                            Err(e) => {
                                debug!(member = %at, error = %e, "no answer to join through");
                                last = e.to_string();
                            }
                        }
                    }
                    last
                }
                Err(e) => e.to_string(),
            };
            if !is_discovery_url(join) || tokio::time::Instant::now() >= deadline {
                return Err(ServerError::Join {
                    address: join.to_string(),
                    reason: last_error,
                });
            }
            info!(through = %join, error = %last_error, "no member to join through yet; trying again");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Leaves the cluster: hands leadership over first if this node leads, then has the
    /// leader remove it.
    pub async fn leave(&self) -> Result<(), ServerError> {
        let token = self.admin_token.as_deref();
        let own = self.own_address();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        if self.handle.view().leader.as_ref() == Some(self.handle.id()) {
            info!("leaving: handing leadership over first");
            self.caller
                .call(&own, "admin_transfer_leader", &json!({}), token)
                .await?;
        }
        let me = json!({ "id": self.config.id });
        retry_refusals(
            &self.caller,
            &own,
            "admin_remove",
            &me,
            token,
            deadline,
            (&["unknown_member"], &["change_in_progress"]),
        )
        .await?;
        info!("left the cluster");
        Ok(())
    }

    /// Stops the client port and the node.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.handle.shutdown().await;
    }
}

/// Where the discovery backend supports it, registers this node's peer address; with
/// no `advertise_peer` or `initial_cluster` entry, takes the discovery's address for
/// this node as the one to advertise instead.
async fn advertise(config: &Config, discovery: Option<&Arc<dyn ServiceDiscovery>>, me: &mut MemberAddress) {
    let id = NodeId::new(&config.id);
    if let Some(d) = discovery {
        // With no advertise_peer or initial_cluster entry, the discovery's address
        // for this node is the one to advertise; else register ours where the
        // backend supports it. Called after the bootstrap set is taken (a DNS
        // discovery lists the names it resolved once), except with `bootstrap_expect`.
        let known = match config.advertise_peer.is_none() && config.initial_cluster.0.is_empty() {
            true => d.get_node_address(&id).await.ok(),
            false => None,
        };
        match (known, me.peer.parse::<NodeAddress>()) {
            (Some(a), _) => me.peer = a.to_string(),
            (None, Ok(addr)) => match d.register_node(&id, addr).await {
                Ok(()) | Err(DiscoveryError::Unsupported { .. }) => {}
                Err(e) => warn!(error = %e, "could not register this node in discovery"),
            },
            (None, Err(_)) => {}
        }
    }
}

/// Whether `join` is a discovery URL rather than a list of client addresses.
pub(crate) fn is_discovery_url(join: &str) -> bool {
    join.contains("://") || join.trim_start().starts_with("static:")
}

/// The client addresses `join` names, without this node's own (a headless Service's
/// SRV records list the joining pod too): `host:port[,host:port...]` as written, or
/// every node of the discovery URL.
async fn join_candidates(join: &str, own_id: &str) -> Result<Vec<String>, ServerError> {
    if !is_discovery_url(join) {
        return Ok(join
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect());
    }
    let all = discovery_from_url(join)?.get_all_node_addresses().await?;
    Ok(all
        .into_iter()
        .filter(|(id, _)| id.as_str() != own_id)
        .map(|(_, a)| a.to_string())
        .collect())
}

/// The running cluster as its leader sees it, reached through the first member `join`
/// names that knows a leader: that member's address and the leader's `admin_members`
/// answer (its membership is the newest, and only it reports how far it replicated to
/// each member). `None` if no member answers with a leader.
async fn running_cluster(caller: &Caller, join: &str, own_id: &str, token: Option<&str>) -> Option<(String, Value)> {
    async fn members_at(caller: &Caller, at: &str, token: Option<&str>) -> Option<Value> {
        let params = json!({});
        let answer = tokio::time::timeout(Duration::from_secs(3), caller.call(at, "admin_members", &params, token));
        answer.await.ok()?.ok()
    }
    let candidates = match join_candidates(join, own_id).await {
        Ok(c) => c,
        Err(e) => {
            debug!(error = %e, "no running cluster found through join");
            return None;
        }
    };
    for at in candidates {
        let Some(mut view) = members_at(caller, &at, token).await else {
            continue;
        };
        let Some(leader) = view["leader"].as_str().map(str::to_string) else {
            continue;
        };
        let leader_client = member_row(&view, &leader)
            .and_then(|r| r["client"].as_str())
            .map(str::to_string);
        if let Some(lc) = leader_client.filter(|lc| *lc != at) {
            if let Some(v) = members_at(caller, &lc, token).await {
                view = v;
            }
        }
        return Some((at, view));
    }
    None
}

/// `id`'s row in an `admin_members` answer.
fn member_row<'a>(members: &'a Value, id: &str) -> Option<&'a Value> {
    members["members"].as_array()?.iter().find(|m| m["id"] == id)
}

/// Whether the leader's `view` lists this (fresh) node; an error if it lists it with
/// replication progress: the node lost its data, and a member must never come back
/// with an empty disk under its old id (it forgot the votes and entries it
/// acknowledged). Best effort: a leader elected since the node died knows no progress
/// of it.
fn refuse_lost_data(at: &str, view: &Value, own_id: &str) -> Result<bool, ServerError> {
    let Some(row) = member_row(view, own_id) else {
        return Ok(false);
    };
    match row["match"].as_u64() {
        Some(n) if n > 0 => Err(ServerError::Join {
            address: at.to_string(),
            reason: format!(
                "this node ({own_id}) is a member of the running cluster, which had replicated its log to it up to index {n}, but its data directory is empty: its data was lost. Remove it first (easyraftctl member remove {own_id}); started again, it joins as a new member"
            ),
        }),
        _ => Ok(true),
    }
}

/// The founding members of a new cluster and the key they come from:
/// `initial_cluster`'s ids, else the discovery set. A discovery set is taken once
/// every node it lists resolves (`refresh` succeeds): founders that took a partial
/// set would found different clusters. Waits for that up to `catch_up_timeout`.
async fn bootstrap_set(
    config: &Config,
    discovery: Option<&Arc<dyn ServiceDiscovery>>,
) -> Result<Option<(&'static str, BTreeSet<String>)>, ServerError> {
    if !config.initial_cluster.0.is_empty() {
        return Ok(Some((
            "initial_cluster",
            config.initial_cluster.0.keys().cloned().collect(),
        )));
    }
    let Some(d) = discovery else { return Ok(None) };
    if config.bootstrap_expect.is_some() {
        let all = expected_set(d.as_ref(), config).await?;
        return Ok(Some(("discovery", all.into_keys().map(|id| id.to_string()).collect())));
    }
    let url = config.discovery.as_deref().unwrap_or_default();
    // etcd's keys and SRV records appear as nodes start: what a new node sees first
    // is not the whole set.
    if url.starts_with("etcd://") || url.starts_with("dns+srv://") {
        return Err(ConfigError::Invalid {
            key: "bootstrap_expect".into(),
            reason: format!(
                "{url}: the set grows as nodes register, so a new node cannot tell when it is complete; \
                 set bootstrap_expect to the number of founding members"
            ),
        }
        .into());
    }
    let deadline = tokio::time::Instant::now() + config.catch_up_timeout;
    loop {
        match d.refresh().await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                info!(error = %e, "waiting for every node of the discovery set to resolve");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let all = d.get_all_node_addresses().await?;
    Ok(Some(("discovery", all.into_keys().map(|id| id.to_string()).collect())))
}

/// With `bootstrap_expect`: the discovery set once it holds exactly that many nodes
/// (this one registered itself first); more is an error, and so is fewer after
/// `catch_up_timeout`.
async fn expected_set(
    d: &dyn ServiceDiscovery,
    config: &Config,
) -> Result<std::collections::BTreeMap<NodeId, NodeAddress>, ServerError> {
    let refuse = |reason: String| -> ServerError {
        ConfigError::Invalid {
            key: "bootstrap_expect".into(),
            reason,
        }
        .into()
    };
    let expect = config.bootstrap_expect.unwrap_or(1);
    let deadline = tokio::time::Instant::now() + config.catch_up_timeout;
    loop {
        let all = d.get_all_node_addresses().await?;
        match all.len() {
            n if n == expect => return Ok(all),
            n if n > expect => {
                return Err(refuse(format!(
                    "discovery lists {n} nodes ({:?}), more than the {expect} expected",
                    all.keys().collect::<Vec<_>>()
                )))
            }
            n if tokio::time::Instant::now() >= deadline => {
                return Err(refuse(format!(
                    "discovery lists {n} of the {expect} expected nodes after {:?}",
                    config.catch_up_timeout
                )))
            }
            n => {
                info!(found = n, expect, "waiting for the founding members to register");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// Calls `method` on the leader until it succeeds, is refused with a reason in `done`
/// (counts as success) or a reason not in `again` (`reasons` is `(done, again)`), or
/// `deadline` passes.
async fn retry_refusals(
    caller: &Caller,
    at: &str,
    method: &str,
    params: &Value,
    token: Option<&str>,
    deadline: tokio::time::Instant,
    (done, again): (&[&str], &[&str]),
) -> Result<(), ServerError> {
    loop {
        match caller.call_leader(at, method, params, token, deadline).await {
            Ok(_) => return Ok(()),
            Err(ServerError::Call {
                code: Some(MEMBERSHIP_REFUSED),
                data: Some(d),
                ..
            }) if d["reason"].as_str().is_some_and(|r| done.contains(&r)) => return Ok(()),
            Err(ServerError::Call {
                code: Some(MEMBERSHIP_REFUSED),
                data: Some(d),
                ..
            }) if d["reason"].as_str().is_some_and(|r| again.contains(&r))
                && tokio::time::Instant::now() < deadline =>
            {
                debug!(method, reason = ?d["reason"], "refused for now; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Keeps this node's addresses in the directory: proposes them when it leads, else
/// asks the leader (`directory_register`) once the leader's client address is known.
async fn register(
    handle: RaftHandle<ServerMachine>,
    directory: Directory,
    me: MemberAddress,
    token: Option<String>,
    caller: Caller,
) {
    let id = handle.id().to_string();
    loop {
        if directory.members().get(&id) == Some(&me) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        let view = handle.view();
        let outcome = match &view.leader {
            Some(l) if l == handle.id() => handle
                .propose(ServerCommand::Directory(DirectoryCommand::Set(id.clone(), me.clone())))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Some(l) => match directory.client(l.as_str()) {
                Some(addr) => {
                    let p = json!({ "id": id, "peer": me.peer, "client": me.client });
                    caller
                        .call(&addr, "directory_register", &p, token.as_deref())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                None => Err("the leader's client address is not known yet".into()),
            },
            None => Err("no leader yet".into()),
        };
        match outcome {
            Ok(()) => info!(%id, "addresses recorded in the directory"),
            Err(e) => {
                debug!(%id, error = %e, "addresses not recorded yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
