//! The server's configuration: a TOML file, then `EASYRAFT_…` environment variables,
//! then command-line flags (flags win). See `deploy/easyraft.toml` for every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

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

/// Where a setting came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(v) => write!(f, "flag {v}"),
        }
    }
}

/// One setting from the environment or a flag: a dotted key (`raft.election_timeout`)
/// and its text.
#[derive(Clone, Debug)]
pub struct Override {
    /// The dotted key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The `EASYRAFT_…` variables: `EASYRAFT_DATA_DIR` is `data_dir`,
/// `EASYRAFT_RAFT_ELECTION_TIMEOUT` is `raft.election_timeout`.
pub fn env_overrides(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut out: Vec<Override> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("EASYRAFT_")?.to_ascii_lowercase();
            let key = match rest.strip_prefix("raft_") {
                Some(field) => format!("raft.{field}"),
                None => rest,
            };
            Some(Override {
                key,
                value,
                origin: Origin::Env(name),
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn is_unknown_key(e: &toml::de::Error) -> bool {
    e.message().starts_with("unknown field")
}

impl Config {
    /// Parses a TOML document; `path` names it in errors, which give the key, the line
    /// and the reason.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| file_error(text, path, &e))
    }

    /// Reads `path` (if any), applies `overrides` in order (later wins), validates.
    pub fn load(path: Option<&Path>, overrides: &[Override]) -> Result<Config, ConfigError> {
        let base = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Config::from_toml(&text, p)?
            }
            None => Config::default(),
        };
        let mut config = base.with_overrides(overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// This configuration with `overrides` applied, each checked on its own so an error
    /// names its key and origin.
    pub fn with_overrides(self, overrides: &[Override]) -> Result<Config, ConfigError> {
        let mut table = toml::Table::try_from(&self).map_err(|e| ConfigError::Internal(e.to_string()))?;
        let mut config = self;
        for o in overrides {
            let bad = |reason: String| ConfigError::Override {
                key: o.key.clone(),
                origin: o.origin.clone(),
                reason,
            };
            let before = table.clone();
            set(&mut table, &o.key, &o.value).map_err(bad)?;
            match table.clone().try_into::<Config>() {
                Ok(c) => config = c,
                // `EASYRAFT_…` is shared with other tools (easyraftctl's
                // EASYRAFT_ENDPOINTS, the test runner's EASYRAFT_PYTHON): a variable
                // that names no key is left alone (see `unknown_env`), a bad value of
                // a key is an error.
                Err(e) if matches!(o.origin, Origin::Env(_)) && is_unknown_key(&e) => table = before,
                Err(e) => return Err(bad(e.message().to_string())),
            }
        }
        Ok(config)
    }

    /// The `EASYRAFT_…` variables among `vars` that name no configuration key (they are
    /// ignored; the binary says so, in case one is a typo). easyraftctl's own
    /// variables, often set in the same shell, are not reported.
    pub fn unknown_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        const CTL: &[&str] = &["EASYRAFT_ENDPOINTS", "EASYRAFT_ADMIN_TOKEN"];
        let vars = vars.into_iter().filter(|(name, _)| !CTL.contains(&name.as_str()));
        let Ok(table) = toml::Table::try_from(Config::default()) else {
            return Vec::new();
        };
        env_overrides(vars)
            .into_iter()
            .filter(|o| {
                let mut t = table.clone();
                set(&mut t, &o.key, &o.value).is_ok() && t.try_into::<Config>().is_err_and(|e| is_unknown_key(&e))
            })
            .filter_map(|o| match o.origin {
                Origin::Env(name) => Some(name),
                Origin::Flag(_) => None,
            })
            .collect()
    }

    /// Checks what types cannot: required keys and consistency.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_string(),
            reason,
        };
        if self.id.is_empty() {
            return Err(invalid("id", "is required (this node's id)".into()));
        }
        // With `join`, a fresh node outside the bootstrap set joins; without it, it
        // must be one of the founders.
        if self.join.is_none() && !self.initial_cluster.0.is_empty() && !self.initial_cluster.0.contains_key(&self.id) {
            return Err(invalid(
                "initial_cluster",
                format!("does not name this node ({}), and no join is given", self.id),
            ));
        }
        if let Some(join) = &self.join {
            if crate::server::is_discovery_url(join) {
                easyraft::discovery::discovery_from_url(join).map_err(|e| invalid("join", e.to_string()))?;
            } else {
                let addrs: Vec<&str> = join.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
                if addrs.is_empty() {
                    return Err(invalid(
                        "join",
                        "names no member (host:port[,host:port...] or a discovery URL)".into(),
                    ));
                }
                for a in addrs {
                    a.parse::<easyraft::discovery::NodeAddress>()
                        .map_err(|e| invalid("join", format!("{a:?}: {e}")))?;
                }
            }
        }
        if self.services.is_empty() {
            return Err(invalid("services", "lists no service".into()));
        }
        self.services.sort();
        self.services.dedup();
        if self.replaces.is_some() && (self.join.is_none() || self.learner) {
            return Err(invalid(
                "replaces",
                "needs join (the cluster to join) and learner = false (the new node becomes a voter)".into(),
            ));
        }
        if self.bootstrap_expect == Some(0) {
            return Err(invalid("bootstrap_expect", "must be at least 1".into()));
        }
        if let Some(url) = &self.discovery {
            easyraft::discovery::discovery_from_url(url).map_err(|e| invalid("discovery", e.to_string()))?;
        }
        for (key, addr) in [
            ("advertise_peer", &self.advertise_peer),
            ("advertise_client", &self.advertise_client),
        ] {
            if let Some(a) = addr {
                a.parse::<easyraft::discovery::NodeAddress>()
                    .map_err(|e| invalid(key, e.to_string()))?;
            }
        }
        if let Some(tls) = &self.tls {
            crate::tls::peer_tls(tls)?;
        }
        if let Some(tls) = &self.client_tls {
            crate::tls::client_port_tls(tls)?;
            crate::client::Caller::new(Some(tls.trusted())).map_err(|e| invalid("client_tls.ca", e))?;
        }
        self.raft
            .clone()
            .core_config(&self.id.as_str().into(), 0)
            .map_err(|e| invalid("raft", e.to_string()))?;
        Ok(())
    }

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

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Internal(e.to_string()))
    }
}

/// Top-level integer keys that default to absent.
const OPTIONAL_INTEGERS: &[&str] = &["bootstrap_expect"];

/// Sets dotted `key` in `table` to `raw`, typed like the value it replaces.
fn set(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), String> {
    let (section, field) = match key.split_once('.') {
        Some((s, f)) => (Some(s), f),
        None => (None, key),
    };
    let target = match section {
        None => table,
        Some(s) => match table.entry(s).or_insert_with(|| toml::Value::Table(Default::default())) {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{s} is not a section")),
        },
    };
    let value = match target.get(field) {
        // Integer keys with no default are absent from the table: typed by name.
        None if section.is_none() && OPTIONAL_INTEGERS.contains(&field) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| format!("{raw:?} is not an integer"))?)
        }
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| format!("{raw:?} is not an integer"))?)
        }
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(format!("{raw:?} is not a boolean (true or false)")),
        }),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    };
    target.insert(field.to_string(), value);
    Ok(())
}

/// A TOML error with its line, and the key on that line (`section.key`).
fn file_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let mut key = None;
    let mut section = None;
    for (n, l) in text.lines().enumerate() {
        let l = l.trim();
        if n + 1 > line {
            break;
        }
        if l.starts_with('[') {
            section = Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            if n + 1 == line {
                key = section.clone();
            }
        } else if n + 1 == line {
            key = l.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string());
        }
    }
    let key = match (section, key) {
        (Some(s), Some(k)) if s != k => Some(format!("{s}.{k}")),
        (_, k) => k,
    };
    ConfigError::File {
        path: path.to_path_buf(),
        line,
        key: key.unwrap_or_else(|| "?".into()),
        reason: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<Override> {
        env_overrides(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_bad_value_names_its_key_and_line() {
        let text = "id = \"n1\"\n\n[raft]\nelection_timeout = \"3 fortnights\"\n";
        let e = Config::from_toml(text, Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("x.toml:4") && e.contains("raft.election_timeout"), "{e}");
        let e = Config::from_toml("id = \"n1\"\nlisten_peer = 5\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml:2") && e.contains("listen_peer"), "{e}");
        let e = Config::from_toml("idd = \"n1\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml:1") && e.contains("idd"), "{e}");
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let file = Config::from_toml(
            "id = \"n1\"\ninitial_cluster = \"n1=127.0.0.1:1,n2=127.0.0.1:2\"\npromote_lag = 5\n[raft]\npre_vote = false\n",
            Path::new("f"),
        )
        .unwrap();
        let mut o = env(&[
            ("EASYRAFT_PROMOTE_LAG", "7"),
            ("EASYRAFT_RAFT_ELECTION_TIMEOUT", "300ms"),
            ("HOME", "/"),
        ]);
        o.push(Override {
            key: "promote_lag".into(),
            value: "9".into(),
            origin: Origin::Flag("--promote-lag".into()),
        });
        let c = file.with_overrides(&o).unwrap();
        assert_eq!(c.promote_lag, 9);
        assert_eq!(c.raft.election_timeout, Duration::from_millis(300));
        assert!(!c.raft.pre_vote);
        assert_eq!(c.initial_cluster.0.len(), 2);
        let e = Config::default()
            .with_overrides(&env(&[("EASYRAFT_PROMOTE_LAG", "many")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("EASYRAFT_PROMOTE_LAG") && e.contains("promote_lag"), "{e}");
        // An integer key with no default is typed by name, from a variable or a flag.
        let c = Config::default()
            .with_overrides(&env(&[("EASYRAFT_BOOTSTRAP_EXPECT", "3")]))
            .unwrap();
        assert_eq!(c.bootstrap_expect, Some(3));
        let e = Config::default()
            .with_overrides(&env(&[("EASYRAFT_BOOTSTRAP_EXPECT", "three")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bootstrap_expect") && e.contains("not an integer"), "{e}");
    }

    #[test]
    fn the_printed_config_reads_back_the_same() {
        let mut c = Config {
            id: "n1".into(),
            join: Some("127.0.0.1:7000".into()),
            ..Config::default()
        };
        c.validate().unwrap();
        let text = c.to_toml().unwrap();
        assert_eq!(Config::from_toml(&text, Path::new("p")).unwrap(), c);
    }

    #[test]
    fn the_example_file_in_deploy_is_valid() {
        let text = include_str!("../../../deploy/easyraft.toml");
        let mut c = Config::from_toml(text, Path::new("deploy/easyraft.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.raft, easyraft::RaftConfig::default());
        assert_eq!(c.initial_cluster.0.len(), 3);
    }

    #[test]
    fn every_service_is_served_by_default_and_each_can_be_named() {
        assert_eq!(Config::default().services.len(), 5);
        let c = Config::from_toml("services = [\"queue\", \"registry\"]", Path::new("p")).unwrap();
        assert_eq!(c.services, [Service::Queue, Service::Registry]);
    }

    #[test]
    fn inconsistent_settings_are_refused_with_their_key() {
        let mut c = Config {
            id: "n3".into(),
            initial_cluster: InitialCluster([("n1".to_string(), "h:1".to_string())].into()),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("initial_cluster"));
        let mut c = Config::default();
        assert!(c.validate().unwrap_err().to_string().contains("id"));
    }

    #[test]
    fn join_takes_addresses_or_a_discovery_url_and_may_name_a_node_outside_the_bootstrap_set() {
        let with_join = |join: &str| Config {
            id: "n4".into(),
            join: Some(join.into()),
            initial_cluster: InitialCluster([("n1".to_string(), "h:1".to_string())].into()),
            ..Config::default()
        };
        for good in [
            "10.0.0.1:7000",
            "10.0.0.1:7000, 10.0.0.2:7000",
            "dns+srv://_client._tcp.easyraft.default.svc.cluster.local?nameserver=127.0.0.1:53",
            "static:n1=127.0.0.1:7000",
        ] {
            with_join(good).validate().unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for (bad, says) in [
            ("10.0.0.1", "10.0.0.1"),
            (" , ", "names no member"),
            ("dns+srv://x?colour=red", "unknown parameter"),
        ] {
            let e = with_join(bad).validate().unwrap_err().to_string();
            assert!(e.contains("`join`") && e.contains(says), "{bad}: {e}");
        }
    }
}
