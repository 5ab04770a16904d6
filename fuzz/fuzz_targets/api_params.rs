//! The JSON-RPC APIs of the kv, lock, config, registry and queue services: any request text gets a
//! JSON-RPC answer (an error for bad params, naming the param) and never a panic.
//! The services run on a node that has stopped here, so a request that passes
//! validation ends in the node's "stopped" error instead of reaching Raft.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use examples::api::Node;
use libfuzzer_sys::fuzz_target;
use raft_cluster::{Cluster, MemNetwork, RaftConfig, RaftHandle, StateMachine};

/// A node's handle, once the node stopped.
fn stopped<SM: StateMachine + Default>(rt: &tokio::runtime::Runtime) -> Node<SM> {
    let handle: RaftHandle<SM> = rt.block_on(async {
        let net = MemNetwork::new();
        let mut cluster = Cluster::start(
            ["fuzz"],
            RaftConfig::fast(),
            |_| Ok(raft_core::MemStorage::default()),
            |_| SM::default(),
            move |id| net.transport(id.clone()),
        )
        .await
        .expect("a one-node cluster starts");
        let handle = cluster.nodes().next().cloned().expect("its node");
        cluster.stop().await;
        handle
    });
    Node::new(handle, BTreeMap::new())
}

struct Apis {
    rt: tokio::runtime::Runtime,
    kv: jsonrpsee::RpcModule<Node<examples::kv::KvStore>>,
    lock: jsonrpsee::RpcModule<Node<examples::lock::LockTable>>,
    config: jsonrpsee::RpcModule<Node<examples::config::ConfigStore>>,
    registry: jsonrpsee::RpcModule<Node<examples::registry::Registry>>,
    queue: jsonrpsee::RpcModule<Node<examples::queue::Queue>>,
}

fn apis() -> &'static Apis {
    static APIS: OnceLock<Apis> = OnceLock::new();
    APIS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Apis {
            kv: examples::kv::rpc(stopped(&rt)),
            lock: examples::lock::rpc(stopped(&rt)),
            config: examples::config::rpc(stopped(&rt)),
            registry: examples::registry::rpc(stopped(&rt)),
            queue: examples::queue::rpc(stopped(&rt)),
            rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let apis = apis();
    let answer = apis.rt.block_on(async {
        match pick % 5 {
            0 => apis.kv.raw_json_request(text, 1).await,
            1 => apis.lock.raw_json_request(text, 1).await,
            2 => apis.config.raw_json_request(text, 1).await,
            3 => apis.registry.raw_json_request(text, 1).await,
            _ => apis.queue.raw_json_request(text, 1).await,
        }
    });
    if let Ok((body, _)) = answer {
        // Every answer is JSON.
        let _: serde_json::Value = serde_json::from_str(body.get()).expect("the answer is JSON");
    }
});
