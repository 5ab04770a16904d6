//! # raft-transport-jsonrpc
//!
//! easyraft's JSON-RPC 2.0 transport on jsonrpsee: one method per Raft message.
//! Every node serves one port that speaks JSON-RPC over HTTP and WebSocket, with one
//! method per Raft message (`raft_appendEntries`, `raft_requestVote`, ...; see
//! docs/protocol.md), callable by any JSON-RPC client. The port carries Raft traffic
//! only: the application's own methods (`kv_put`, `lock_acquire`, ...) and the
//! node's health, status and metrics are served by an API server built on the
//! node's `RaftHandle`, on its own port. Peers keep one WebSocket JSON-RPC
//! connection each, found through a [`ServiceDiscovery`], with up to
//! [`JsonRpcConfig::max_in_flight`] batches on it at once, in order.
//!
//! ```no_run
//! use std::sync::Arc;
//! use raft_discovery::StaticServiceDiscovery;
//! use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
//!
//! let discovery = Arc::new(StaticServiceDiscovery::localhost([("node1", 5001), ("node2", 5002), ("node3", 5003)]));
//! let config = JsonRpcConfig::new("127.0.0.1:5001".parse().unwrap(), "my-cluster").with_token("s3cret");
//! let transport = JsonRpcTransport::new("node1", config, discovery);
//! # let _ = transport;
//! ```
#![warn(missing_docs, unreachable_pub)]

mod client;
mod config;
mod envelope;
mod order;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jsonrpsee::server::ServerHandle;
use raft_cluster::{Inbox, Transport, TransportError};
use raft_core::{Message, NodeId};
use raft_discovery::ServiceDiscovery;
use tracing::info;

pub use config::JsonRpcConfig;
pub use server::{method_name, ErrorCode, METHODS};

pub(crate) struct Inner {
    pub(crate) me: NodeId,
    pub(crate) cfg: JsonRpcConfig,
    pub(crate) discovery: Arc<dyn ServiceDiscovery>,
    peers: Mutex<BTreeMap<NodeId, Arc<client::Peer>>>,
    local_addr: Mutex<Option<SocketAddr>>,
}

/// Stops the server when the last handle of the transport goes.
#[derive(Default)]
struct ServerGuard(Mutex<Option<ServerHandle>>);

impl ServerGuard {
    fn take(&self) -> Option<ServerHandle> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(h) = self.take() {
            let _ = h.stop();
        }
    }
}

/// The JSON-RPC [`Transport`] of one node.
#[derive(Clone)]
pub struct JsonRpcTransport {
    inner: Arc<Inner>,
    server: Arc<ServerGuard>,
}

impl JsonRpcTransport {
    /// A transport for node `me`, listening as `config` says and finding peers
    /// through `discovery`.
    pub fn new(me: impl Into<NodeId>, config: JsonRpcConfig, discovery: Arc<dyn ServiceDiscovery>) -> Self {
        JsonRpcTransport {
            inner: Arc::new(Inner {
                me: me.into(),
                cfg: config,
                discovery,
                peers: Mutex::default(),
                local_addr: Mutex::default(),
            }),
            server: Arc::default(),
        }
    }

    /// The address the server is bound to, once started (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr.lock().ok().and_then(|a| *a)
    }

    fn peer(&self, to: &NodeId) -> Arc<client::Peer> {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .entry(to.clone())
            .or_insert_with(|| Arc::new(client::Peer::new(&self.inner.cfg)))
            .clone()
    }
}

#[async_trait]
impl Transport for JsonRpcTransport {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        let (handle, addr) = server::start(&self.inner, inbox).await?;
        info!(id = %self.inner.me, %addr, "JSON-RPC transport listening");
        if let Ok(mut a) = self.inner.local_addr.lock() {
            *a = Some(addr);
        }
        if let Ok(mut s) = self.server.0.lock() {
            if let Some(old) = s.replace(handle) {
                let _ = old.stop();
            }
        }
        Ok(())
    }

    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        // No lock across the round trip: the peer writes under its connection's lock
        // and awaits answers outside it, up to `max_in_flight` batches at once.
        self.peer(to).send(&self.inner, to, messages).await
    }

    async fn stop(&self) {
        if let Some(h) = self.server.take() {
            let _ = h.stop();
            h.stopped().await;
        }
        if let Ok(mut peers) = self.inner.peers.lock() {
            peers.clear();
        }
    }
}
