//! The settings of the DNS discovery: suffix names or SRV records, the name server,
//! and how long answers are trusted.

use std::net::SocketAddr;
use std::time::Duration;

use raft_core::NodeId;

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

/// Settings of [`DnsServiceDiscovery`](super::DnsServiceDiscovery).
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Suffix names or SRV records.
    pub lookup: DnsLookup,
    /// The name server to ask (UDP, then TCP for truncated answers); `None` uses
    /// the system's (`/etc/resolv.conf`).
    pub name_server: Option<SocketAddr>,
    /// How long one resolution may take before it fails with
    /// [`DiscoveryError::Timeout`](crate::DiscoveryError::Timeout).
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
