//! The two transports' setup: the ports, the relays, the discovery backend and the
//! token of one run, handed to the script over WebSocket or JSON-RPC.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use easyraft::prelude::*;
use easyraft::transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use easyraft::transport_ws::{WsConfig, WsTransport};

use super::options::{DemoOptions, DemoTransport, Report};
use super::scene::Setup;
use super::script::run_on;
use crate::discovery::DemoDiscoveries;
use crate::error::TaskError;
use crate::ports::{loopback, pick_ports};
use crate::relay::Relays;

/// One run of the demo on ports picked once.
pub(super) async fn run_once(opts: DemoOptions) -> Result<Report, TaskError> {
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
