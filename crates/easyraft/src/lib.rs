//! # easyraft
//!
//! Raft consensus for Rust: give it a [`StateMachine`] and get
//! back a replicated one that stays strongly consistent across 3, 5 or 7 machines and
//! survives crashes and partitions without losing an acknowledged write.
//!
//! This crate is the facade: it re-exports the layered crates, so depend on it alone.
//! The [`prelude`] has what most programs use.
//!
//! ```
//! use easyraft::prelude::*;
//!
//! /// A replicated key-value map.
//! #[derive(Default)]
//! struct Kv(std::collections::BTreeMap<String, String>);
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! enum Cmd {
//!     Set(String, String),
//! }
//!
//! impl StateMachine for Kv {
//!     type Command = Cmd;
//!     type Response = ();
//!     type Query = String;
//!     type QueryResponse = Option<String>;
//!     fn apply(&mut self, _index: LogIndex, cmd: Cmd) {
//!         let Cmd::Set(k, v) = cmd;
//!         self.0.insert(k, v);
//!     }
//!     fn query(&self, key: String) -> Option<String> {
//!         self.0.get(&key).cloned()
//!     }
//!     fn snapshot(&self) -> Result<Bytes, BoxError> {
//!         let pairs: Vec<(&String, &String)> = self.0.iter().collect();
//!         Ok(encode(&pairs))
//!     }
//!     fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
//!         self.0 = String::from_utf8(data.to_vec())?
//!             .lines()
//!             .filter_map(|l| l.split_once('='))
//!             .map(|(k, v)| (k.to_string(), v.to_string()))
//!             .collect();
//!         Ok(())
//!     }
//! }
//!
//! fn encode(pairs: &[(&String, &String)]) -> Bytes {
//!     pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>().into()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), easyraft::Error> {
//! // Three nodes in one process on the in-memory network.
//! let mut cluster = MemCluster::start_in_memory(["node1", "node2", "node3"], RaftConfig::fast(), |_| Kv::default()).await?;
//! let leader = cluster.wait_for_leader(std::time::Duration::from_secs(5)).await?;
//! leader.propose(Cmd::Set("key1".into(), "value1".into())).await?;
//! // A linearizable read, here on a follower.
//! let follower = cluster.nodes().find(|n| n.id() != leader.id()).unwrap();
//! assert_eq!(follower.read("key1".into()).await?, Some("value1".to_string()));
//! cluster.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## The crates
//! - [`core`] (`raft-core`): the protocol as a pure state machine, for your own event loop.
//! - [`storage`] (`raft-storage`): the durable log on disk and the storage contract suite.
//! - [`cluster`] (`raft-cluster`): the tokio runtime, handles, the in-memory network.
//! - [`discovery`] (`raft-discovery`): where nodes live (static map, ...).
//! - [`transport_ws`] (`raft-transport-ws`): the WebSocket transport, used by
//!   [`WebSocketRaftCluster`].
//! - [`transport_jsonrpc`] (`raft-transport-jsonrpc`): the JSON-RPC transport, used by
//!   [`JsonRpcRaftCluster`].
#![warn(missing_docs, unreachable_pub)]

mod ws;

pub use raft_cluster as cluster;
pub use raft_core as core;
pub use raft_discovery as discovery;
pub use raft_storage as storage;
pub use raft_transport_jsonrpc as transport_jsonrpc;
pub use raft_transport_ws as transport_ws;
pub use ws::{
    storage_for, AnyStorage, JsonRpcClusterOptions, JsonRpcRaftCluster, JsonRpcSettings, NetClusterOptions,
    NetTransport, NetworkClusterExt, WebSocketRaftCluster, WsClusterOptions, WsSettings,
};

pub use raft_cluster::{
    BoxError, Cluster, Error, Inbox, MemNetwork, MemTransport, Metrics, NodeView, RaftConfig, RaftEvent, RaftHandle,
    RaftNode, Result, StateMachine, Transport, TransportError,
};
pub use raft_core::{LogIndex, Membership, MembershipChange, NodeId, Role, Status, Term};
pub use raft_storage::{FileStorage, LogStore};

/// A cluster of nodes in one process on the in-memory network, with in-memory storage.
pub type MemCluster<SM> = Cluster<SM, raft_core::MemStorage, MemTransport>;

/// Constructors for [`MemCluster`].
pub trait MemClusterExt<SM: StateMachine>: Sized {
    /// Starts `ids` as a new cluster on a fresh [`MemNetwork`], each node with
    /// in-memory storage and the state machine `make` builds.
    fn start_in_memory<I, N>(
        ids: I,
        config: RaftConfig,
        make: impl Fn(&NodeId) -> SM + Send + Sync + 'static,
    ) -> impl std::future::Future<Output = Result<Self>>
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>;
}

impl<SM: StateMachine> MemClusterExt<SM> for MemCluster<SM> {
    async fn start_in_memory<I, N>(
        ids: I,
        config: RaftConfig,
        make: impl Fn(&NodeId) -> SM + Send + Sync + 'static,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>,
    {
        let net = MemNetwork::new();
        Cluster::start(
            ids,
            config,
            |_| Ok(raft_core::MemStorage::default()),
            make,
            move |id| net.transport(id.clone()),
        )
        .await
    }
}

/// What most programs need.
pub mod prelude {
    pub use crate::{
        JsonRpcClusterOptions, JsonRpcRaftCluster, MemCluster, MemClusterExt, NetworkClusterExt, WebSocketRaftCluster,
        WsClusterOptions,
    };
    pub use bytes::Bytes;
    pub use raft_cluster::{BoxError, Cluster, MemNetwork, RaftConfig, RaftEvent, RaftHandle, RaftNode, StateMachine};
    pub use raft_core::{LogIndex, MembershipChange, NodeId, Role};
    pub use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
}
