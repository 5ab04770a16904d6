//! A transport that counts what a node or host hands it: calls to `send`, and
//! messages (the multi-group tests measure batching and quiet with it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use raft_cluster::{Inbox, MemTransport, Transport, TransportError};
use raft_core::{Message, NodeId};

/// A `MemTransport` that counts into shared counters.
pub struct Counting {
    pub inner: MemTransport,
    pub sends: Arc<AtomicU64>,
    pub messages: Arc<AtomicU64>,
}

#[async_trait]
impl Transport for Counting {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        self.inner.start(inbox).await
    }
    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.sends.fetch_add(1, Ordering::Relaxed);
        self.messages.fetch_add(messages.len() as u64, Ordering::Relaxed);
        self.inner.send(to, messages).await
    }
    async fn stop(&self) {
        self.inner.stop().await
    }
}
