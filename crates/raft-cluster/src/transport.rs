//! The `Transport` trait every network implementation provides, the `Inbox` through
//! which it hands inbound messages to the local node, and the per-peer outbound queues
//! the runtime puts in front of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use raft_core::{Message, MessageBody, NodeId};
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{debug, trace};

/// Why a send failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer could not be reached (no address, connection refused, reset...).
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The peer did not answer in time.
    #[error("timed out sending to {0}")]
    Timeout(NodeId),
    /// A message exceeded the size limit.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The transport was shut down.
    #[error("transport closed")]
    Closed,
    /// Anything else, from an implementation.
    #[error(transparent)]
    Other(crate::error::BoxError),
}

/// Carries Raft messages between nodes. Implementations keep the order of messages
/// to one peer, time out, cap message sizes, and never panic on bad input.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Called once when the node starts: serve inbound connections and deliver what
    /// arrives to `inbox`.
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError>;

    /// Sends a batch of messages to one peer, in order. An error means some may not
    /// have arrived (Raft retries).
    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError>;

    /// Stops serving (the node is shutting down).
    async fn stop(&self) {}

    /// Called once before `start` with a live view of the node (role, term, leader,
    /// commit, applied), for transports that serve health or status endpoints.
    fn observe(&self, view: tokio::sync::watch::Receiver<crate::events::NodeView>) {
        let _ = view;
    }

    /// Called once before `start` with the node's live metrics, for transports
    /// that serve them (e.g. `GET /metrics`).
    fn observe_metrics(&self, metrics: crate::metrics::MetricsSource) {
        let _ = metrics;
    }
}

/// Where a transport delivers inbound messages for the local node.
#[derive(Clone, Debug)]
pub struct Inbox {
    id: NodeId,
    tx: mpsc::Sender<Message>,
}

/// Why an inbound message was not taken.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InboxError {
    /// The message is for another node.
    #[error("message for {to} delivered to {local}")]
    WrongTarget {
        /// The message's target.
        to: NodeId,
        /// This node.
        local: NodeId,
    },
    /// The node is overloaded; the message was dropped (Raft retries).
    #[error("inbox full; message dropped")]
    Full,
    /// The node has stopped.
    #[error("node stopped")]
    Closed,
}

impl Inbox {
    pub(crate) fn new(id: NodeId, capacity: usize) -> (Self, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Inbox { id, tx }, rx)
    }

    /// The local node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.id
    }

    /// Hands a message to the node without waiting. Messages for other nodes are
    /// refused, so a misrouted message never reaches the core.
    pub fn deliver(&self, message: Message) -> Result<(), InboxError> {
        if message.to != self.id {
            return Err(InboxError::WrongTarget {
                to: message.to,
                local: self.id.clone(),
            });
        }
        self.tx.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => InboxError::Full,
            mpsc::error::TrySendError::Closed(_) => InboxError::Closed,
        })
    }
}

/// What the outbound queues report back to the node.
#[derive(Debug)]
pub(crate) enum SendReport {
    Unreachable(NodeId),
    SnapshotFailed(NodeId),
}

/// One bounded queue and one sender task per peer, so a slow or dead peer never blocks
/// the node or the other peers, and messages to one peer keep their order.
pub(crate) struct Outbound<T> {
    transport: Arc<T>,
    queues: BTreeMap<NodeId, mpsc::Sender<Message>>,
    capacity: usize,
    reports: mpsc::UnboundedSender<SendReport>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<T: Transport> Outbound<T> {
    pub(crate) fn new(transport: Arc<T>, capacity: usize, reports: mpsc::UnboundedSender<SendReport>) -> Self {
        Outbound {
            transport,
            queues: BTreeMap::new(),
            capacity,
            reports,
            tasks: Vec::new(),
        }
    }

    pub(crate) fn send_all(&mut self, messages: Vec<Message>) {
        for m in messages {
            trace!(msg = %m, "send");
            let to = m.to.clone();
            let q = match self.queues.get(&to) {
                Some(q) => q.clone(),
                None => self.spawn_peer(to.clone()),
            };
            if let Err(mpsc::error::TrySendError::Full(m)) = q.try_send(m) {
                debug!(peer = %to, kind = m.body.kind(), "outbound queue full; dropping message");
                let _ = self.reports.send(report_for(&m));
            }
        }
    }

    fn spawn_peer(&mut self, peer: NodeId) -> mpsc::Sender<Message> {
        let (tx, mut rx) = mpsc::channel::<Message>(self.capacity);
        let transport = self.transport.clone();
        let reports = self.reports.clone();
        let to = peer.clone();
        self.tasks.push(tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                let snapshot = batch.iter().any(|m| matches!(m.body, MessageBody::InstallSnapshot(_)));
                if let Err(e) = transport.send(&to, batch).await {
                    debug!(peer = %to, error = %e, "send failed");
                    let _ = reports.send(SendReport::Unreachable(to.clone()));
                    if snapshot {
                        let _ = reports.send(SendReport::SnapshotFailed(to.clone()));
                    }
                }
            }
        }));
        self.queues.insert(peer, tx.clone());
        tx
    }
}

fn report_for(m: &Message) -> SendReport {
    match m.body {
        MessageBody::InstallSnapshot(_) => SendReport::SnapshotFailed(m.to.clone()),
        _ => SendReport::Unreachable(m.to.clone()),
    }
}

impl<T> Drop for Outbound<T> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
