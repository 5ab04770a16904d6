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

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use raft_core::NodeId;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::{DiscoveryError, NodeAddress, ServiceDiscovery};

const BACKEND: &str = "dns";
/// After a failed lookup, a stale answer is served for this long before the name
/// is asked again (so a dead server is not hammered on every call).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// How node ids map to DNS names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsLookup {
    /// Node `id` is `{id}{suffix}` (A/AAAA records); every node listens on `port`.
    Suffix {
        /// Appended to the node id, e.g. `.raft.default.svc.cluster.local`.
        suffix: String,
        /// The port every node listens on.
        port: u16,
    },
    /// SRV records at `name` list the nodes: each target's first label is the node
    /// id (`node-0.raft.default.svc.cluster.local.` is node `node-0`), its port the
    /// record's port. Targets are resolved to addresses through the same resolver.
    Srv {
        /// The SRV name, e.g. `_raft._tcp.raft.default.svc.cluster.local`.
        name: String,
    },
}

/// Settings of [`DnsServiceDiscovery`].
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Suffix names or SRV records.
    pub lookup: DnsLookup,
    /// The name server to ask (UDP, then TCP for truncated answers); `None` uses
    /// the system's (`/etc/resolv.conf`).
    pub name_server: Option<SocketAddr>,
    /// How long one resolution may take before it fails with
    /// [`DiscoveryError::Timeout`].
    pub timeout: Duration,
    /// How long after its TTL ran out the last good address is still returned when
    /// the name no longer resolves or the server does not answer.
    pub grace: Duration,
    /// Answers are cached for their TTL, but never longer than this.
    pub max_ttl: Duration,
    /// The node ids that `get_all_node_addresses` lists in suffix mode (DNS cannot
    /// enumerate names); nodes resolved once are listed too.
    pub nodes: Vec<NodeId>,
}

impl DnsConfig {
    /// Nodes at `{id}{suffix}`, all on `port`. A suffix without a leading dot gets
    /// one (`cluster.local` and `.cluster.local` are the same).
    pub fn suffix(suffix: impl Into<String>, port: u16) -> Self {
        let mut suffix = suffix.into();
        if !suffix.is_empty() && !suffix.starts_with('.') {
            suffix.insert(0, '.');
        }
        Self::with_lookup(DnsLookup::Suffix { suffix, port })
    }

    /// Nodes listed by the SRV records at `name`.
    pub fn srv(name: impl Into<String>) -> Self {
        Self::with_lookup(DnsLookup::Srv { name: name.into() })
    }

    fn with_lookup(lookup: DnsLookup) -> Self {
        DnsConfig {
            lookup,
            name_server: None,
            timeout: Duration::from_secs(3),
            grace: Duration::from_secs(60),
            max_ttl: Duration::from_secs(300),
            nodes: Vec::new(),
        }
    }

    /// Asks `server` instead of the system's name servers.
    pub fn with_name_server(mut self, server: SocketAddr) -> Self {
        self.name_server = Some(server);
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`grace`](Self::grace).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`nodes`](Self::nodes).
    pub fn with_nodes<I, N>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>,
    {
        self.nodes = nodes.into_iter().map(Into::into).collect();
        self
    }
}

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
    resolver: TokioResolver,
    server: String,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for DnsServiceDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServiceDiscovery")
            .field("cfg", &self.cfg)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl DnsServiceDiscovery {
    /// A discovery with `cfg`. Fails only if the system resolver configuration
    /// cannot be read (when no name server is given).
    pub fn new(cfg: DnsConfig) -> Result<Self, DiscoveryError> {
        let provider = TokioRuntimeProvider::default();
        let (builder, server) = match cfg.name_server {
            Some(addr) => {
                let conn = |mut c: ConnectionConfig| {
                    c.port = addr.port();
                    c
                };
                let ns = NameServerConfig::new(
                    addr.ip(),
                    true,
                    vec![conn(ConnectionConfig::udp()), conn(ConnectionConfig::tcp())],
                );
                let mut rc = ResolverConfig::default();
                rc.name_servers = vec![ns];
                (TokioResolver::builder_with_config(rc, provider), addr.to_string())
            }
            None => {
                let b = TokioResolver::builder(provider).map_err(|e| DiscoveryError::Backend {
                    backend: BACKEND,
                    reason: format!("cannot read the system resolver configuration: {e}"),
                })?;
                (b, "the system resolver".to_string())
            }
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.timeout;
        opts.attempts = 1;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        if cfg.name_server.is_some() {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let resolver = builder
            .with_options(opts)
            .build()
            .map_err(|e| DiscoveryError::Backend {
                backend: BACKEND,
                reason: format!("cannot build a resolver: {e}"),
            })?;
        Ok(DnsServiceDiscovery {
            cfg,
            resolver,
            server,
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

    fn error(&self, name: &str, record: &'static str, e: NetError) -> DiscoveryError {
        if e.is_nx_domain() || e.is_no_records_found() {
            return DiscoveryError::NameNotFound {
                name: name.to_string(),
                record,
                server: self.server.clone(),
            };
        }
        match e {
            NetError::Timeout => self.timeout_error(),
            e => DiscoveryError::Unreachable {
                backend: BACKEND,
                server: self.server.clone(),
                reason: format!("looking up {record} of {name}: {e}"),
            },
        }
    }

    fn timeout_error(&self) -> DiscoveryError {
        DiscoveryError::Timeout {
            backend: BACKEND,
            server: self.server.clone(),
            after: self.cfg.timeout,
        }
    }

    /// Runs one resolution under the configured timeout.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, DiscoveryError>>,
    ) -> Result<T, DiscoveryError> {
        tokio::time::timeout(self.cfg.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error()))
    }

    /// A/AAAA of `name`: the first address, and when the answer expires.
    async fn resolve_ip(&self, name: &str) -> Result<(IpAddr, std::time::Instant), DiscoveryError> {
        let lookup = self
            .resolver
            .lookup_ip(name)
            .await
            .map_err(|e| self.error(name, "A/AAAA", e))?;
        let ip = lookup.iter().next().ok_or_else(|| DiscoveryError::NameNotFound {
            name: name.to_string(),
            record: "A/AAAA",
            server: self.server.clone(),
        })?;
        Ok((ip, lookup.valid_until()))
    }

    /// The SRV set at `name`, every target resolved.
    async fn resolve_srv(
        &self,
        name: &str,
    ) -> Result<(BTreeMap<NodeId, NodeAddress>, std::time::Instant), DiscoveryError> {
        let lookup = self
            .resolver
            .lookup(name, RecordType::SRV)
            .await
            .map_err(|e| self.error(name, "SRV", e))?;
        let mut until = lookup.valid_until();
        let mut nodes = BTreeMap::new();
        let mut records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(srv.clone()),
                _ => None,
            })
            .collect();
        // Lowest priority value first, then highest weight: the preferred record
        // wins when two name the same node.
        records.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        for srv in records {
            let Some(id) = node_id_of(&srv.target) else {
                continue;
            };
            if nodes.contains_key(&id) {
                continue;
            }
            let target = srv.target.to_ascii();
            let (ip, target_until) = self.resolve_ip(&target).await?;
            until = until.min(target_until);
            nodes.insert(id, NodeAddress::new(ip.to_string(), srv.port));
        }
        if nodes.is_empty() {
            return Err(DiscoveryError::NameNotFound {
                name: name.to_string(),
                record: "SRV",
                server: self.server.clone(),
            });
        }
        Ok((nodes, until))
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
        match self.bounded(self.resolve_ip(&name)).await {
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
        match self.bounded(self.resolve_srv(name)).await {
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

/// The node id named by an SRV target: its first label, lowercased.
fn node_id_of(target: &Name) -> Option<NodeId> {
    let label = target.iter().next()?;
    let label = std::str::from_utf8(label).ok()?;
    (!label.is_empty()).then(|| NodeId::new(label.to_ascii_lowercase()))
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
                    match self.bounded(self.resolve_ip(&name)).await {
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
            DnsLookup::Srv { name } => match self.bounded(self.resolve_srv(name)).await {
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
