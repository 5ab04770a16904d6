//! What the server's configuration holds: [`Config`] and the types of its keys, with
//! their defaults. See `deploy/easyraft.toml` for every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One of the services a server can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// `kv_*`.
    Kv,
    /// `lock_*`.
    Lock,
    /// `config_*`.
    Config,
    /// `registry_*`.
    Registry,
    /// `queue_*`.
    Queue,
}

/// The founding members: `id → host:peerport`, written `"node1=h:p,node2=h:p"` or as a
/// table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct InitialCluster(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for InitialCluster {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(String),
            Table(BTreeMap<String, String>),
        }
        let map = match Form::deserialize(d)? {
            Form::Table(t) => t,
            Form::List(s) => parse_members(&s).map_err(serde::de::Error::custom)?,
        };
        for (id, addr) in &map {
            addr.parse::<easyraft::discovery::NodeAddress>()
                .map_err(|e| serde::de::Error::custom(format!("member {id}: {e}")))?;
        }
        Ok(InitialCluster(map))
    }
}

/// Parses `node1=host:port,node2=host:port`.
fn parse_members(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not id=host:port"))?;
        if map.insert(id.trim().to_string(), addr.trim().to_string()).is_some() {
            return Err(format!("member {id} is named twice"));
        }
    }
    Ok(map)
}

/// Certificate and key files (PEM) for `wss://` between peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// The CA that signed the peers' certificates (default: `cert` itself, for a
    /// cluster sharing one certificate).
    pub ca: Option<PathBuf>,
    /// The name peers' certificates are checked against (default: each peer's host).
    pub server_name: Option<String>,
}

/// Everything a server needs to run one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's id (required).
    pub id: String,
    /// Where the log, snapshots and state live.
    pub data_dir: PathBuf,
    /// Where Raft traffic is accepted.
    pub listen_peer: SocketAddr,
    /// The peer address other members reach this node at (default: `initial_cluster`'s
    /// entry for `id`, else `listen_peer`).
    pub advertise_peer: Option<String>,
    /// Where the services, admin API, `/health`, `/status` and `/metrics` are served.
    pub listen_client: SocketAddr,
    /// The client address others are told (default: `listen_client`).
    pub advertise_client: Option<String>,
    /// The cluster's id: peers of another cluster are refused.
    pub cluster_id: String,
    /// The founding members (bootstrap), `id → host:peerport`.
    pub initial_cluster: InitialCluster,
    /// Where to find members: any raft-discovery URL (`static:`, `file://`, `dns://`,
    /// `dns+srv://`, `etcd://`); its set bootstraps when `initial_cluster` is empty.
    pub discovery: Option<String>,
    /// With a discovery whose set grows as nodes start (`etcd://`, `dns+srv://`), a new
    /// node registers, waits until the set holds this many nodes (up to
    /// `catch_up_timeout`) and bootstraps with exactly them; more than this many is an
    /// error, not a guess. Required to bootstrap from `etcd://` or `dns+srv://`.
    pub bootstrap_expect: Option<usize>,
    /// Join a running cluster: members' client addresses (`host:port[,host:port...]`)
    /// or a discovery URL listing them (`dns+srv://_client._tcp.…`). Used by a fresh
    /// node that is not in the bootstrap set (`initial_cluster`, else the discovery
    /// set); a fresh node in that set bootstraps, a node with data ignores it.
    pub join: Option<String>,
    /// Stay a learner after joining.
    pub learner: bool,
    /// With `join`: take the place of this (dead) member. The new node is added as a
    /// learner, catches up, is promoted, and then the old member is removed
    /// (`admin_replace`), so the number of voters never drops.
    pub replaces: Option<String>,
    /// A joining learner is promoted once it is within this many entries of the leader.
    pub promote_lag: u64,
    /// How long a join or `admin_replace` waits for the learner to catch up.
    #[serde(with = "crate::duration::serde")]
    pub catch_up_timeout: Duration,
    /// On SIGTERM, leave the cluster (handing leadership over first) before exiting.
    pub leave_on_shutdown: bool,
    /// The services served (all by default).
    pub services: Vec<Service>,
    /// A file holding the cluster (peer) token.
    pub peer_token_file: Option<PathBuf>,
    /// A file holding the admin token (`Authorization: Bearer …` on admin calls).
    pub admin_token_file: Option<PathBuf>,
    /// Serve the admin API without a token (closed networks and tests only).
    pub admin_insecure: bool,
    /// Certificate and key for `wss://` between peers.
    pub tls: Option<TlsFiles>,
    /// Certificate and key for HTTPS on the client port. Every member of a cluster
    /// sets it or none does: members then reach each other's client ports over
    /// `https://` (joining, registering, `admin_status`).
    pub client_tls: Option<ClientTlsFiles>,
    /// The Raft settings.
    pub raft: easyraft::RaftConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: String::new(),
            data_dir: PathBuf::from("data"),
            listen_peer: SocketAddr::from(([0, 0, 0, 0], 7001)),
            advertise_peer: None,
            listen_client: SocketAddr::from(([0, 0, 0, 0], 7000)),
            advertise_client: None,
            cluster_id: "easyraft".into(),
            initial_cluster: InitialCluster::default(),
            discovery: None,
            bootstrap_expect: None,
            join: None,
            learner: false,
            replaces: None,
            promote_lag: 100,
            catch_up_timeout: Duration::from_secs(60),
            leave_on_shutdown: false,
            services: vec![
                Service::Kv,
                Service::Lock,
                Service::Config,
                Service::Registry,
                Service::Queue,
            ],
            peer_token_file: None,
            admin_token_file: None,
            admin_insecure: false,
            tls: None,
            client_tls: None,
            raft: easyraft::RaftConfig::default(),
        }
    }
}

/// Certificate and key files (PEM) for HTTPS on the client port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsFiles {
    /// The certificate chain, naming the hosts clients connect to.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// The CA that signed the members' client certificates, which this server trusts
    /// when it calls another member (default: `cert` itself, for a cluster sharing
    /// one certificate).
    pub ca: Option<PathBuf>,
}

impl ClientTlsFiles {
    /// The CA certificates other members' client ports are checked against.
    pub fn trusted(&self) -> &std::path::Path {
        self.ca.as_deref().unwrap_or(&self.cert)
    }
}

impl Config {
    /// The peer address members reach this node at.
    pub fn peer_address(&self) -> String {
        self.advertise_peer
            .clone()
            .or_else(|| self.initial_cluster.0.get(&self.id).cloned())
            .unwrap_or_else(|| self.listen_peer.to_string())
    }

    /// The client address others are told.
    pub fn client_address(&self) -> String {
        self.advertise_client
            .clone()
            .unwrap_or_else(|| self.listen_client.to_string())
    }
}

/// Whether a `join` value is a discovery URL rather than a list of client addresses.
pub(crate) fn is_discovery_url(join: &str) -> bool {
    join.contains("://") || join.trim_start().starts_with("static:")
}
