//! `cargo xtask demo --discovery static|file|dns|etcd`: how the demo's nodes find
//! each other.
//!
//! The demo's links run through relays (so a partition can be cut), so every node
//! has its own view of the cluster: itself at its real port, each peer at the relay
//! of the link to it (see [`crate::relay`]). Each backend publishes those views for
//! real and the nodes read them back through it:
//!
//! - `static`: an in-memory map per node;
//! - `file`: one JSON file per node (`cluster-node1.json`, ...) (a map from node id to address),
//!   written through `register_node` (atomic writes), read through `file://`;
//! - `dns`: an authoritative DNS server started in this process on 127.0.0.1, with
//!   SRV records `_raft._tcp.<node>.demo.test` per view, read through `dns+srv://`;
//! - `etcd`: a real `etcd` started on free loopback ports with a temporary data
//!   directory (install Debian's `etcd-server`), each view registered under the
//!   prefix `/easyraft-demo/<node>` with leases kept alive, read through the watch.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use easyraft::discovery::{
    discovery_from_url, EtcdServiceDiscovery, FileServiceDiscovery, NodeAddress, ServiceDiscovery,
    StaticServiceDiscovery,
};
use easyraft::NodeId;
use raft_discovery::testing::{DnsTestServer, EtcdServer};

/// What the nodes of one view see: node id -> address.
pub type View = BTreeMap<NodeId, NodeAddress>;

/// The discovery backend of a demo run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoDiscovery {
    /// An in-memory map per node.
    #[default]
    Static,
    /// One JSON file per node.
    File,
    /// SRV records from a DNS server started for the demo.
    Dns,
    /// A real etcd started for the demo.
    Etcd,
}

/// The per-node discoveries, and the servers they need, alive as long as this is.
pub struct DemoDiscoveries {
    nodes: BTreeMap<NodeId, Arc<dyn ServiceDiscovery>>,
    description: String,
    _dns: Option<DnsTestServer>,
    _etcd: Option<EtcdServer>,
}

impl DemoDiscoveries {
    /// Publishes `views` (one per node) through `kind`; files go under `dir`.
    pub async fn start(
        kind: DemoDiscovery,
        views: BTreeMap<NodeId, View>,
        dir: &Path,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let mut nodes: BTreeMap<NodeId, Arc<dyn ServiceDiscovery>> = BTreeMap::new();
        let mut dns = None;
        let mut etcd = None;
        let description = match kind {
            DemoDiscovery::Static => {
                for (me, view) in views {
                    nodes.insert(me, Arc::new(StaticServiceDiscovery::new(view)));
                }
                "static maps in memory".to_string()
            }
            DemoDiscovery::File => {
                for (me, view) in views {
                    let path = dir.join(format!("cluster-{me}.json"));
                    let writer = FileServiceDiscovery::create(&path)?;
                    for (id, addr) in view {
                        writer.register_node(&id, addr).await?;
                    }
                    nodes.insert(me, discovery_from_url(&format!("file://{}", path.display()))?);
                }
                format!("JSON files {}/cluster-<node>.json (id -> address)", dir.display())
            }
            DemoDiscovery::Dns => {
                let server = DnsTestServer::start("demo.test").await?;
                for (me, view) in views {
                    let mut targets = Vec::new();
                    for (id, addr) in &view {
                        let name = format!("{id}.{me}.demo.test");
                        let ip: Ipv4Addr = addr.host.parse()?;
                        server.set_a(&name, &[ip], 30).await?;
                        targets.push((addr.port, name));
                    }
                    let srv = format!("_raft._tcp.{me}.demo.test");
                    let refs: Vec<(u16, &str)> = targets.iter().map(|(p, n)| (*p, n.as_str())).collect();
                    server.set_srv(&srv, &refs, 30).await?;
                    let url = format!("dns+srv://{srv}?nameserver={}", server.addr());
                    nodes.insert(me, discovery_from_url(&url)?);
                }
                let description = format!(
                    "DNS SRV records _raft._tcp.<node>.demo.test from a DNS server on {}",
                    server.addr()
                );
                dns = Some(server);
                description
            }
            DemoDiscovery::Etcd => {
                let server = EtcdServer::start()
                    .await
                    .map_err(|e| format!("cannot start etcd: {e}"))?;
                for (me, view) in views {
                    let d = EtcdServiceDiscovery::new(server.config(&format!("/easyraft-demo/{me}")))?;
                    for (id, addr) in view {
                        d.register_node(&id, addr).await?;
                    }
                    nodes.insert(me, Arc::new(d));
                }
                let description = format!("etcd at {} (keys /easyraft-demo/<node>/<peer>)", server.endpoint());
                etcd = Some(server);
                description
            }
        };
        Ok(DemoDiscoveries {
            nodes,
            description,
            _dns: dns,
            _etcd: etcd,
        })
    }

    /// Node `id`'s discovery.
    pub fn for_node(&self, id: &NodeId) -> Arc<dyn ServiceDiscovery> {
        self.nodes
            .get(id)
            .cloned()
            .unwrap_or_else(|| Arc::new(StaticServiceDiscovery::default()))
    }

    /// One line saying where the nodes find each other.
    pub fn description(&self) -> &str {
        &self.description
    }
}
