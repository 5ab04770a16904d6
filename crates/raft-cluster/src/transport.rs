//! The `Transport` trait every network implementation provides, the `Inbox` through
//! which it hands inbound messages to the local node, and the per-peer outbound queues
//! the runtime puts in front of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use raft_core::{GroupId, Message, MessageBody, NodeId};
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{debug, trace};

pub use crate::error::TransportError;
use crate::metrics::Counters;

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
}

/// Where a transport delivers inbound messages for the local node: one node's queue,
/// or, for a [`crate::RaftHost`], the queue of the message's group.
#[derive(Clone, Debug)]
pub struct Inbox {
    id: NodeId,
    route: Route,
}

/// Where an [`Inbox`] puts a message.
#[derive(Clone, Debug)]
enum Route {
    /// One node's queue (every message, whatever its group: the core refuses another
    /// group's).
    Node(mpsc::Sender<Message>),
    /// The queue of the message's group on a host of many groups.
    Groups(Arc<GroupRoutes>),
}

/// The group id of the hosts' liveness beats (`crate::RaftHost`): one per peer host
/// per tick, standing in for the heartbeats of every quiesced group. No Raft group
/// may have it.
pub const LIVENESS_GROUP: GroupId = GroupId::MAX;

/// The most peer hosts a host keeps liveness for.
const MAX_PEERS: usize = 4096;

/// The queues of the groups a host runs, by group id, and when each peer host was
/// last heard (its liveness beats).
#[derive(Debug, Default)]
pub(crate) struct GroupRoutes {
    queues: RwLock<HashMap<GroupId, mpsc::Sender<Message>>>,
    /// Each peer's last liveness beat: when it came, and the peer's epoch.
    heard: std::sync::Mutex<HashMap<NodeId, (std::time::Instant, u64)>>,
    /// Bumped whenever a group stops here (removed, or its node stopped): the beats
    /// carry it, so that the peers wake the quiesced groups this host led.
    epoch: AtomicU64,
}

impl GroupRoutes {
    /// Each peer's last liveness beat: when it came, and the epoch it carried.
    pub(crate) fn heard(&self) -> HashMap<NodeId, (std::time::Instant, u64)> {
        self.heard.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// This host's epoch: how many times one of its groups stopped.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records a beat. At most [`MAX_PEERS`] peers are remembered, so beats that
    /// claim ever new senders cannot grow the map.
    fn beat(&self, from: NodeId, epoch: u64) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        if heard.len() < MAX_PEERS || heard.contains_key(&from) {
            heard.insert(from, (std::time::Instant::now(), epoch));
        }
    }

    /// Routes the group's messages to the queue `inbox` delivers to.
    pub(crate) fn insert(&self, group: GroupId, inbox: &Inbox) {
        if let Route::Node(tx) = &inbox.route {
            self.queues
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(group, tx.clone());
        }
    }

    /// The group's messages are refused from now on ([`InboxError::UnknownGroup`]).
    pub(crate) fn remove(&self, group: GroupId) {
        if self
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group)
            .is_some()
        {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn get(&self, group: GroupId) -> Option<mpsc::Sender<Message>> {
        self.queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .cloned()
    }
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
    /// The host runs no group with this id (never created, or removed).
    #[error("no group {group} on this node")]
    UnknownGroup {
        /// The message's group.
        group: GroupId,
    },
}

impl Inbox {
    pub(crate) fn new(id: NodeId, capacity: usize) -> (Self, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Inbox {
                id,
                route: Route::Node(tx),
            },
            rx,
        )
    }

    /// The inbox of a host of many groups: each message goes to its group's queue.
    pub(crate) fn for_groups(id: NodeId, routes: Arc<GroupRoutes>) -> Self {
        Inbox {
            id,
            route: Route::Groups(routes),
        }
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
        // A group's queue that has closed is a group just removed.
        let routed;
        let (tx, closed) = match &self.route {
            Route::Node(tx) => (tx, InboxError::Closed),
            Route::Groups(routes) if message.group == LIVENESS_GROUP => {
                let epoch = match &message.body {
                    MessageBody::Heartbeat(h) => h.commit,
                    _ => 0,
                };
                routes.beat(message.from, epoch);
                return Ok(());
            }
            Route::Groups(routes) => {
                let group = message.group;
                routed = routes.get(group).ok_or(InboxError::UnknownGroup { group })?;
                (&routed, InboxError::UnknownGroup { group })
            }
        };
        tx.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => InboxError::Full,
            mpsc::error::TrySendError::Closed(_) => closed,
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
/// the node or the other peers, and messages to one peer keep their order. Each queue
/// holds at most `capacity` messages and `max_bytes` bytes (as [`message_bytes`]
/// counts them, from when a message is queued until the transport has sent it).
pub(crate) struct Outbound<T> {
    transport: Arc<T>,
    queues: BTreeMap<NodeId, PeerQueue>,
    capacity: usize,
    max_bytes: u64,
    counters: Arc<Counters>,
    reports: mpsc::UnboundedSender<SendReport>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One peer's queue and the bytes in it (shared with its sender task).
#[derive(Clone)]
struct PeerQueue {
    tx: mpsc::Sender<(Message, u64)>,
    bytes: Arc<AtomicU64>,
}

/// What a message weighs in an outbound queue: its entries' sizes
/// ([`raft_core::Entry::size`]) or its snapshot chunk's bytes, plus a fixed overhead.
pub(crate) fn message_bytes(m: &Message) -> u64 {
    const OVERHEAD: u64 = 64;
    let body = match &m.body {
        MessageBody::AppendEntries(a) => a.entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.size())),
        MessageBody::InstallSnapshot(c) => c.data.len() as u64,
        _ => 0,
    };
    body.saturating_add(OVERHEAD)
}

/// Takes `n` bytes off a queue's count (never below zero).
fn release(bytes: &AtomicU64, n: u64) {
    let _ = bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(n)));
}

impl<T: Transport> Outbound<T> {
    pub(crate) fn new(
        transport: Arc<T>,
        capacity: usize,
        max_bytes: u64,
        counters: Arc<Counters>,
        reports: mpsc::UnboundedSender<SendReport>,
    ) -> Self {
        Outbound {
            transport,
            queues: BTreeMap::new(),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            counters,
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
            let size = message_bytes(&m);
            let queued = q.bytes.load(Ordering::Acquire);
            if queued > 0 && queued.saturating_add(size) > self.max_bytes {
                debug!(peer = %to, kind = m.body.kind(), queued, size, "outbound queue over its byte cap; dropping message");
                self.dropped(&m);
                continue;
            }
            q.bytes.fetch_add(size, Ordering::AcqRel);
            match q.tx.try_send((m, size)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full((m, size))) => {
                    release(&q.bytes, size);
                    debug!(peer = %to, kind = m.body.kind(), "outbound queue full; dropping message");
                    self.dropped(&m);
                }
                Err(mpsc::error::TrySendError::Closed((m, size))) => {
                    release(&q.bytes, size);
                    debug!(peer = %to, kind = m.body.kind(), "outbound sender gone; dropping message");
                    self.dropped(&m);
                }
            }
        }
    }

    /// A message to a peer did not fit its queue: count it, and tell the node so the
    /// leader probes the peer again (appends are re-sent by flow control).
    fn dropped(&self, m: &Message) {
        Counters::add(&self.counters.outbound_dropped, 1);
        let _ = self.reports.send(report_for(m));
    }

    fn spawn_peer(&mut self, peer: NodeId) -> PeerQueue {
        let (tx, mut rx) = mpsc::channel::<(Message, u64)>(self.capacity);
        let bytes = Arc::new(AtomicU64::new(0));
        let transport = self.transport.clone();
        let reports = self.reports.clone();
        let to = peer.clone();
        let in_queue = bytes.clone();
        self.tasks.push(tokio::spawn(async move {
            while let Some((first, size)) = rx.recv().await {
                let mut batch = vec![first];
                let mut batch_bytes = size;
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok((m, size)) => {
                            batch.push(m);
                            batch_bytes = batch_bytes.saturating_add(size);
                        }
                        Err(_) => break,
                    }
                }
                let snapshot = batch.iter().any(|m| matches!(m.body, MessageBody::InstallSnapshot(_)));
                let result = transport.send(&to, batch).await;
                // The batch's memory is the transport's no longer.
                release(&in_queue, batch_bytes);
                if let Err(e) = result {
                    debug!(peer = %to, error = %e, "send failed");
                    let _ = reports.send(SendReport::Unreachable(to.clone()));
                    if snapshot {
                        let _ = reports.send(SendReport::SnapshotFailed(to.clone()));
                    }
                }
            }
        }));
        let q = PeerQueue { tx, bytes };
        self.queues.insert(peer, q.clone());
        q
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

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{AppendRequest, Entry, EntryPayload};
    use std::sync::Mutex;
    use tokio::sync::Semaphore;

    /// Records what it is asked to send; every send waits for a permit first.
    struct Gated {
        gate: Semaphore,
        sent: Mutex<Vec<Message>>,
    }

    #[async_trait]
    impl Transport for Gated {
        async fn start(&self, _inbox: Inbox) -> Result<(), TransportError> {
            Ok(())
        }
        async fn send(&self, _to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
            self.gate.acquire().await.map_err(|_| TransportError::Closed)?.forget();
            self.sent.lock().unwrap_or_else(|e| e.into_inner()).extend(messages);
            Ok(())
        }
    }

    fn append(index: u64, payload: usize) -> Message {
        Message {
            group: 0,
            from: NodeId::new("a"),
            to: NodeId::new("b"),
            term: 1,
            body: MessageBody::AppendEntries(AppendRequest {
                prev_log_index: index - 1,
                prev_log_term: 1,
                entries: vec![Entry {
                    term: 1,
                    index,
                    payload: EntryPayload::Command(vec![7u8; payload].into()),
                }],
                commit: 0,
            }),
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_peer_that_does_not_drain_holds_at_most_the_byte_cap_and_drops_are_counted() {
        let transport = Arc::new(Gated {
            gate: Semaphore::new(0),
            sent: Mutex::new(Vec::new()),
        });
        let counters = Arc::new(Counters::default());
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let cap = 10_000;
        let mut out = Outbound::new(transport.clone(), 4096, cap, counters.clone(), reports_tx);
        let size = message_bytes(&append(1, 1000));
        out.send_all((1..=100).map(|i| append(i, 1000)).collect());
        settle().await;
        let queued = out.queues[&NodeId::new("b")].bytes.load(Ordering::Acquire);
        assert!(queued <= cap, "{queued} bytes queued for a peer capped at {cap}");
        let accepted = (cap / size) as usize;
        assert_eq!(queued, accepted as u64 * size);
        let dropped = counters.snapshot().outbound_dropped;
        assert_eq!(dropped, 100 - accepted as u64);
        let mut unreachable = 0;
        while let Ok(r) = reports.try_recv() {
            assert!(
                matches!(r, SendReport::Unreachable(ref p) if p.as_str() == "b"),
                "{r:?}"
            );
            unreachable += 1;
        }
        assert_eq!(
            unreachable, dropped,
            "every drop tells the node the peer is unreachable"
        );

        // The peer drains: exactly what was queued arrives, in order, and the bytes are
        // free again.
        transport.gate.add_permits(1000);
        settle().await;
        let sent: Vec<u64> = transport
            .sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|m| match &m.body {
                MessageBody::AppendEntries(a) => a.entries[0].index,
                _ => 0,
            })
            .collect();
        assert_eq!(sent, (1..=accepted as u64).collect::<Vec<_>>());
        assert_eq!(out.queues[&NodeId::new("b")].bytes.load(Ordering::Acquire), 0);
        out.send_all(vec![append(101, 1000)]);
        settle().await;
        assert_eq!(counters.snapshot().outbound_dropped, dropped);
    }

    #[tokio::test]
    async fn a_message_over_the_byte_cap_goes_when_the_queue_is_empty() {
        let transport = Arc::new(Gated {
            gate: Semaphore::new(1000),
            sent: Mutex::new(Vec::new()),
        });
        let counters = Arc::new(Counters::default());
        let (reports_tx, _reports) = mpsc::unbounded_channel();
        let mut out = Outbound::new(transport.clone(), 4096, 100, counters.clone(), reports_tx);
        out.send_all(vec![append(1, 5000)]);
        settle().await;
        assert_eq!(transport.sent.lock().unwrap_or_else(|e| e.into_inner()).len(), 1);
        assert_eq!(counters.snapshot().outbound_dropped, 0);
    }
}
