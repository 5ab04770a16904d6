//! What a run shares, and the two transports' setup.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use easyraft::prelude::*;
use easyraft::transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use easyraft::transport_ws::{WsConfig, WsTransport};
use easyraft::AnyStorage;

use super::ports::{loopback, pick_ports};
use super::scenario::run_on;
use super::{DemoError, DemoOptions, DemoTransport, Report};
use crate::discovery::DemoDiscoveries;
use crate::relay::Relays;
use examples::kv::KvStore as Kv;

/// Everything a run shares, whatever the transport.
pub(super) struct Setup {
    pub(super) opts: DemoOptions,
    pub(super) started: Instant,
    pub(super) ids: Vec<NodeId>,
    pub(super) ports: BTreeMap<NodeId, u16>,
    pub(super) data: tempfile::TempDir,
    pub(super) relays: Arc<Relays>,
    pub(super) discoveries: Arc<DemoDiscoveries>,
    pub(super) token: String,
}

/// The demo's cluster over transport `T`.
pub(super) type DemoCluster<T> = Cluster<Kv, AnyStorage, T>;

/// One run of the demo on ports picked once.
pub(super) async fn run_once(opts: DemoOptions) -> Result<Report, DemoError> {
    let started = Instant::now();
    let n = opts.nodes;
    if n < 3 || n % 2 == 0 {
        return Err(format!("--nodes must be odd and at least 3 (got {n})").into());
    }
    let ids: Vec<NodeId> = (1..=n).map(|i| NodeId::new(format!("node{i}"))).collect();
    let ports: BTreeMap<NodeId, u16> = ids.iter().cloned().zip(pick_ports(n, opts.base_port)?).collect();
    let data = tempfile::Builder::new().prefix("easyraft-demo-").tempdir()?;
    let relays = Arc::new(Relays::start(&ports).await?);
    // Each node's view (peers at the relays of its links), published through the
    // chosen discovery backend.
    let mut views = BTreeMap::new();
    for id in &ids {
        views.insert(id.clone(), relays.discovery_for(id).get_all_node_addresses().await?);
    }
    let discoveries = Arc::new(DemoDiscoveries::start(opts.discovery, views, data.path()).await?);
    let token = format!("demo-{:016x}", random());
    let (d, p, t) = (discoveries.clone(), ports.clone(), token.clone());
    let setup = Setup {
        opts,
        started,
        ids,
        ports,
        data,
        relays,
        discoveries,
        token,
    };
    match setup.opts.transport {
        DemoTransport::Ws => {
            run_on(setup, move |id: &NodeId| {
                let cfg = WsConfig::new(loopback(p[id]), "easyraft-demo").with_token(t.clone());
                WsTransport::new(id.clone(), cfg, d.for_node(id))
            })
            .await
        }
        DemoTransport::JsonRpc => {
            run_on(setup, move |id: &NodeId| {
                let cfg = JsonRpcConfig::new(loopback(p[id]), "easyraft-demo").with_token(t.clone());
                JsonRpcTransport::new(id.clone(), cfg, d.for_node(id))
            })
            .await
        }
    }
}

/// Some randomness for the cluster token, without a dependency.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
