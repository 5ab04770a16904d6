//! DNS discovery with hickory-resolver: either every node `id` is the name
//! `{id}{suffix}` with A/AAAA records and all nodes listen on one port (suffix
//! `.cluster.local`, port 8080: `node1.cluster.local:8080`), or SRV records under one name give
//! each node's host and port (`_raft._tcp.raft.default.svc.cluster.local` for a
//! Kubernetes headless Service).
//!
//! Answers are cached for their TTL; `refresh()` drops the cache and re-resolves.
//! When a name stops resolving or the server times out, the caller gets a typed
//! error from `refresh()`, while `get_node_address` keeps answering with the last
//! good address for [`DnsConfig::grace`] after its TTL ran out (logging a warning),
//! so a DNS hiccup does not cut a running cluster apart.

mod config;
mod resolver;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use raft_core::NodeId;
use tokio::time::Instant;
use tracing::{debug, warn};

pub use self::config::{DnsConfig, DnsLookup};
use self::resolver::{Resolver, BACKEND};
use crate::{DiscoveryError, NodeAddress, ServiceDiscovery};

/// After a failed lookup, a stale answer is served for this long before the name
/// is asked again (so a dead server is not hammered on every call).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// One cached answer.
#[derive(Clone, Debug)]
struct Cached<T> {
    value: T,
    /// Until then the answer is used without asking again (its TTL).
    fresh_until: Instant,
    /// After the TTL, a failed re-resolution still returns the value until then.
    usable_until: Instant,
}

impl<T: Clone> Cached<T> {
    fn new(value: T, fresh_until: Instant, grace: Duration) -> Self {
        Cached {
            value,
            fresh_until,
            usable_until: fresh_until + grace,
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    nodes: HashMap<NodeId, Cached<NodeAddress>>,
    srv: Option<Cached<BTreeMap<NodeId, NodeAddress>>>,
}

/// DNS discovery, read-only: `register_node` and
/// `unregister_node` answer [`DiscoveryError::Unsupported`] (publish records through
/// your DNS, e.g. a Kubernetes headless Service).
pub struct DnsServiceDiscovery {
    cfg: DnsConfig,
    resolver: Resolver,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for DnsServiceDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServiceDiscovery")
            .field("cfg", &self.cfg)
            .field("server", &self.resolver.server())
            .finish_non_exhaustive()
    }
}

impl DnsServiceDiscovery {
    /// A discovery with `cfg`. Fails only if the system resolver configuration
    /// cannot be read (when no name server is given).
    pub fn new(cfg: DnsConfig) -> Result<Self, DiscoveryError> {
        let resolver = Resolver::new(&cfg)?;
        Ok(DnsServiceDiscovery {
            cfg,
            resolver,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &DnsConfig {
        &self.cfg
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ttl_until(&self, valid_until: std::time::Instant) -> Instant {
        let ttl = valid_until.saturating_duration_since(std::time::Instant::now());
        Instant::now() + ttl.min(self.cfg.max_ttl)
    }

    /// Node `id` in suffix mode: from the cache while fresh, else asked again, else
    /// the stale answer within the grace period.
    async fn suffix_node(
        &self,
        id: &NodeId,
        suffix: &str,
        port: u16,
        force: bool,
    ) -> Result<NodeAddress, DiscoveryError> {
        let now = Instant::now();
        let cached = self.cache().nodes.get(id).cloned();
        if let Some(c) = &cached {
            if !force && now < c.fresh_until {
                return Ok(c.value.clone());
            }
        }
        let name = format!("{id}{suffix}");
        match self.resolver.ip(&name).await {
            Ok((ip, until)) => {
                let addr = NodeAddress::new(ip.to_string(), port);
                debug!(%id, %name, %addr, "resolved");
                let entry = Cached::new(addr.clone(), self.ttl_until(until), self.cfg.grace);
                self.cache().nodes.insert(id.clone(), entry);
                Ok(addr)
            }
            Err(e) => self.stale_or(e, cached, |c| {
                self.cache().nodes.insert(id.clone(), c);
            }),
        }
    }

    /// All nodes in SRV mode, with the same cache rules.
    async fn srv_nodes(&self, name: &str, force: bool) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        let now = Instant::now();
        let cached = self.cache().srv.clone();
        if let Some(c) = &cached {
            if !force && now < c.fresh_until {
                return Ok(c.value.clone());
            }
        }
        match self.resolver.srv(name).await {
            Ok((nodes, until)) => {
                debug!(%name, nodes = nodes.len(), "resolved SRV");
                self.cache().srv = Some(Cached::new(nodes.clone(), self.ttl_until(until), self.cfg.grace));
                Ok(nodes)
            }
            Err(e) => self.stale_or(e, cached, |c| self.cache().srv = Some(c)),
        }
    }

    /// After a failed lookup: the stale value if still within its grace period
    /// (remembering not to ask again for a moment), else the error.
    fn stale_or<T: Clone + std::fmt::Debug>(
        &self,
        e: DiscoveryError,
        cached: Option<Cached<T>>,
        store: impl FnOnce(Cached<T>),
    ) -> Result<T, DiscoveryError> {
        let now = Instant::now();
        match cached {
            Some(mut c) if now < c.usable_until => {
                warn!(error = %e, stale = ?c.value, left = ?(c.usable_until - now), "DNS lookup failed; using the last good answer");
                c.fresh_until = (now + RETRY_AFTER_FAILURE).min(c.usable_until);
                let value = c.value.clone();
                store(c);
                Ok(value)
            }
            _ => Err(e),
        }
    }

    /// Every id this discovery knows of in suffix mode.
    fn known_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.cfg.nodes.clone();
        ids.extend(self.cache().nodes.keys().cloned());
        ids.sort();
        ids.dedup();
        ids
    }
}

#[async_trait]
impl ServiceDiscovery for DnsServiceDiscovery {
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError> {
        match &self.cfg.lookup {
            DnsLookup::Suffix { suffix, port } => self.suffix_node(id, suffix, *port, false).await,
            DnsLookup::Srv { name } => self
                .srv_nodes(name, false)
                .await?
                .remove(id)
                .ok_or_else(|| DiscoveryError::UnknownNode(id.clone())),
        }
    }

    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        match &self.cfg.lookup {
            DnsLookup::Suffix { suffix, port } => {
                let mut out = BTreeMap::new();
                let mut first_error = None;
                for id in self.known_ids() {
                    match self.suffix_node(&id, suffix, *port, false).await {
                        Ok(a) => {
                            out.insert(id, a);
                        }
                        Err(e) => {
                            warn!(%id, error = %e, "node not resolved");
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match first_error {
                    Some(e) if out.is_empty() => Err(e),
                    _ => Ok(out),
                }
            }
            DnsLookup::Srv { name } => self.srv_nodes(name, false).await,
        }
    }

    async fn register_node(&self, _id: &NodeId, _address: NodeAddress) -> Result<(), DiscoveryError> {
        Err(DiscoveryError::Unsupported {
            backend: BACKEND,
            operation: "register_node (publish DNS records instead)",
        })
    }

    async fn unregister_node(&self, _id: &NodeId) -> Result<(), DiscoveryError> {
        Err(DiscoveryError::Unsupported {
            backend: BACKEND,
            operation: "unregister_node (remove the DNS records instead)",
        })
    }

    /// Drops every cached answer and re-resolves: in suffix mode each known node,
    /// in SRV mode the record set. Returns the first failure (the last good
    /// addresses stay usable within the grace period).
    async fn refresh(&self) -> Result<(), DiscoveryError> {
        self.resolver.clear_cache();
        match &self.cfg.lookup {
            DnsLookup::Suffix { suffix, port } => {
                let mut first_error = None;
                for id in self.known_ids() {
                    let name = format!("{id}{suffix}");
                    let cached = self.cache().nodes.get(&id).cloned();
                    match self.resolver.ip(&name).await {
                        Ok((ip, until)) => {
                            let entry = Cached::new(
                                NodeAddress::new(ip.to_string(), *port),
                                self.ttl_until(until),
                                self.cfg.grace,
                            );
                            self.cache().nodes.insert(id, entry);
                        }
                        Err(e) => {
                            if let Some(mut c) = cached {
                                // Keep the stale answer for readers, but ask again next time.
                                c.fresh_until = Instant::now();
                                self.cache().nodes.insert(id, c);
                            }
                            first_error.get_or_insert(e);
                        }
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
            DnsLookup::Srv { name } => match self.resolver.srv(name).await {
                Ok((nodes, until)) => {
                    self.cache().srv = Some(Cached::new(nodes, self.ttl_until(until), self.cfg.grace));
                    Ok(())
                }
                Err(e) => {
                    if let Some(c) = self.cache().srv.as_mut() {
                        c.fresh_until = Instant::now();
                    }
                    Err(e)
                }
            },
        }
    }
}
