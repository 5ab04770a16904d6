//! Asking DNS through hickory-resolver: A/AAAA of a name, or an SRV set with every
//! target resolved, each bounded by the configured timeout and failing with a typed
//! error that names the server asked.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use raft_core::NodeId;

use super::config::DnsConfig;
use crate::{DiscoveryError, NodeAddress};

/// The backend's name in errors.
pub(super) const BACKEND: &str = "dns";

/// A resolver asking the configured name server (or the system's).
pub(super) struct Resolver {
    inner: TokioResolver,
    /// The server asked, for errors.
    server: String,
    /// How long one resolution may take.
    timeout: Duration,
}

impl Resolver {
    /// A resolver for `cfg`. Fails only if the system resolver configuration cannot be
    /// read (when no name server is given).
    pub(super) fn new(cfg: &DnsConfig) -> Result<Self, DiscoveryError> {
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
        Ok(Resolver {
            inner: resolver,
            server,
            timeout: cfg.timeout,
        })
    }

    /// The server asked.
    pub(super) fn server(&self) -> &str {
        &self.server
    }

    /// Forgets every answer the resolver cached itself.
    pub(super) fn clear_cache(&self) {
        self.inner.clear_cache();
    }

    /// A/AAAA of `name`, within the timeout: the first address, and when the answer
    /// expires.
    pub(super) async fn ip(&self, name: &str) -> Result<(IpAddr, std::time::Instant), DiscoveryError> {
        self.bounded(self.resolve_ip(name)).await
    }

    /// The SRV set at `name`, every target resolved, within the timeout; and when the
    /// first of the answers expires.
    pub(super) async fn srv(
        &self,
        name: &str,
    ) -> Result<(BTreeMap<NodeId, NodeAddress>, std::time::Instant), DiscoveryError> {
        self.bounded(self.resolve_srv(name)).await
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
            after: self.timeout,
        }
    }

    /// Runs one resolution under the configured timeout.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, DiscoveryError>>,
    ) -> Result<T, DiscoveryError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error()))
    }

    /// A/AAAA of `name`: the first address, and when the answer expires.
    async fn resolve_ip(&self, name: &str) -> Result<(IpAddr, std::time::Instant), DiscoveryError> {
        let lookup = self
            .inner
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
            .inner
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
}

/// The node id named by an SRV target: its first label, lowercased.
fn node_id_of(target: &Name) -> Option<NodeId> {
    let label = target.iter().next()?;
    let label = std::str::from_utf8(label).ok()?;
    (!label.is_empty()).then(|| NodeId::new(label.to_ascii_lowercase()))
}
