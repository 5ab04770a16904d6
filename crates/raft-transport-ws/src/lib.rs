//! # raft-transport-ws
//!
//! easyraft's WebSocket transport. Every node serves `ws://host:port/raft/` (or
//! `wss://` with TLS) and keeps one outbound connection per peer, found through a
//! [`ServiceDiscovery`]. Between nodes, binary frames carry postcard-encoded batches;
//! any WebSocket client can also speak the JSON envelope in text frames. The
//! port carries Raft traffic only: a plain HTTP request gets a short 404 and the
//! connection closes. A node's health, status and metrics come from its
//! `RaftHandle` (`view`, `status`, `metrics`), which the application's API server
//! serves (see `raft_cluster::ops::respond`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use raft_discovery::StaticServiceDiscovery;
//! use raft_transport_ws::{WsConfig, WsTransport};
//!
//! let discovery = Arc::new(StaticServiceDiscovery::localhost([("node1", 5001), ("node2", 5002), ("node3", 5003)]));
//! let config = WsConfig::new("127.0.0.1:5001".parse().unwrap(), "my-cluster").with_token("s3cret");
//! let transport = WsTransport::new("node1", config, discovery);
//! // Pass `transport` to `raft_cluster::RaftNode::start` or a `Cluster` factory.
//! # let _ = transport;
//! ```
//!
//! The wire formats are the `raft-wire` crate's, documented in `docs/protocol.md`.
#![warn(missing_docs, unreachable_pub)]

mod client;
mod config;
mod http;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use raft_cluster::{Inbox, Transport, TransportError};
use raft_core::{Message, NodeId};
use raft_discovery::ServiceDiscovery;
use tracing::info;

#[cfg(feature = "tls")]
pub use config::TlsConfig;
pub use config::{Encoding, WsConfig};

pub(crate) struct Inner {
    pub(crate) me: NodeId,
    pub(crate) cfg: WsConfig,
    pub(crate) discovery: Arc<dyn ServiceDiscovery>,
    peers: Mutex<BTreeMap<NodeId, Arc<tokio::sync::Mutex<client::Peer>>>>,
    local_addr: Mutex<Option<SocketAddr>>,
}

/// Owns the server task: when the last handle of a transport goes (the node stopped
/// or was killed), the server stops too and its port is released.
#[derive(Default)]
struct ServerGuard(Mutex<Option<tokio::task::JoinHandle<()>>>);

impl ServerGuard {
    fn take(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(task) = self.take() {
            task.abort();
        }
    }
}

/// The WebSocket [`Transport`] of one node.
#[derive(Clone)]
pub struct WsTransport {
    inner: Arc<Inner>,
    server: Arc<ServerGuard>,
}

impl WsTransport {
    /// A transport for node `me`, listening as `config` says and finding peers
    /// through `discovery`.
    pub fn new(me: impl Into<NodeId>, config: WsConfig, discovery: Arc<dyn ServiceDiscovery>) -> Self {
        WsTransport {
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

    fn peer(&self, to: &NodeId) -> Arc<tokio::sync::Mutex<client::Peer>> {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.entry(to.clone()).or_default().clone()
    }
}

#[async_trait]
impl Transport for WsTransport {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        let listener = bind(self.inner.cfg.listen).await?;
        let addr = listener.local_addr().ok();
        info!(id = %self.inner.me, addr = ?addr, "WebSocket transport listening");
        if let Ok(mut a) = self.inner.local_addr.lock() {
            *a = addr;
        }
        let task = tokio::spawn(server::serve(listener, self.inner.clone(), inbox));
        if let Ok(mut s) = self.server.0.lock() {
            if let Some(old) = s.replace(task) {
                old.abort();
            }
        }
        Ok(())
    }

    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        let peer = self.peer(to);
        let mut peer = peer.lock().await;
        peer.send(&self.inner, to, messages).await
    }

    async fn stop(&self) {
        if let Some(task) = self.server.take() {
            task.abort();
            let _ = task.await;
        }
        if let Ok(mut peers) = self.inner.peers.lock() {
            peers.clear();
        }
    }
}

/// Binds the listener, retrying for a moment while a previous incarnation of this node
/// (killed a moment ago) still holds the port.
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, TransportError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(TransportError::Other(format!("cannot listen on {addr}: {e}").into())),
        }
    }
}
