//! How a node starts on its data directory: with state, as it was; empty, it founds the
//! cluster with the others of the bootstrap set (`initial_cluster`, else the discovery
//! set, taken once it is complete) or joins a running one through `join`. Where the
//! discovery backend keeps addresses, the node registers its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use easyraft::discovery::{DiscoveryError, NodeAddress, ServiceDiscovery};
use easyraft::{Membership, NodeId};
use tracing::{info, warn};

use crate::client::Caller;
use crate::config::{Config, ConfigError};
use crate::directory::MemberAddress;
use crate::error::ServerError;
use crate::join::{refuse_lost_data, running_cluster};

/// How a node whose data directory is `fresh` (or not) starts: the membership it
/// founds the cluster with (`None`: it has state, or joins), and whether
/// [`crate::Server::join`] has to join it to a running cluster. `me` is what the node
/// advertises, which the discovery may fill in.
pub(crate) async fn plan(
    config: &Config,
    discovery: Option<&Arc<dyn ServiceDiscovery>>,
    caller: &Caller,
    admin_token: Option<&str>,
    fresh: bool,
    me: &mut MemberAddress,
) -> Result<(Option<Membership>, bool), ServerError> {
    let mut joining = false;
    let registered = fresh && config.bootstrap_expect.is_some();
    if registered {
        advertise(config, discovery, me).await;
    }
    let bootstrap = if !fresh {
        info!(data_dir = %config.data_dir.display(), "the data directory has state: bootstrap and join settings are ignored");
        None
    } else {
        let set = bootstrap_set(config, discovery).await?;
        let in_set = set.as_ref().is_some_and(|(_, s)| s.contains(config.id.as_str()));
        // What a running cluster reached through `join` says of this node, asked
        // before the node starts (once started, a leader that still counts it
        // would replicate to it): a member that lost its data is refused; a founder
        // it does not list was removed and joins.
        let listed = match &config.join {
            Some(join) => match running_cluster(caller, join, &config.id, admin_token).await {
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
                        "the bootstrap set {set:?} does not include this node ({}), and no join is given",
                        config.id
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
        advertise(config, discovery, me).await;
    }
    Ok((bootstrap, joining))
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
async fn expected_set(d: &dyn ServiceDiscovery, config: &Config) -> Result<BTreeMap<NodeId, NodeAddress>, ServerError> {
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
