//! One connection per peer for all of a host's groups: each group's node sends
//! through a [`GroupTransport`], which hands its batches to the host's [`PeerMux`];
//! the mux sends everything queued for one peer, from every group, as one transport
//! batch (one frame, when it fits).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use raft_core::{GroupId, Message, MessageBody, NodeId};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::transport::{GroupRoutes, Inbox, Transport, TransportError};

/// Messages a batch from every group may add up to before the mux sends what it has.
const MAX_BATCH: usize = 4096;

/// How long a batch of heartbeats waits for the other groups' (the timer's
/// resolution: 1 ms).
const HEARTBEAT_LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// One group's batch for a peer, and where to say how its send went.
type Batch = (Vec<Message>, oneshot::Sender<Result<(), TransportError>>);

/// The host's outbound side: one queue and one sender task per peer, shared by every
/// group. A group's node has at most one batch per peer in the queue (its own peer
/// sender waits for the answer), so a queue holds at most one batch per group.
pub(crate) struct PeerMux<T> {
    transport: Arc<T>,
    peers: Mutex<HashMap<NodeId, mpsc::UnboundedSender<Batch>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl<T: Transport> PeerMux<T> {
    pub(crate) fn new(transport: Arc<T>) -> Self {
        PeerMux {
            transport,
            peers: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Sends one group's batch to `to` with whatever the other groups have queued.
    pub(crate) async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        let (done, outcome) = oneshot::channel();
        self.queue(to)
            .send((messages, done))
            .map_err(|_| TransportError::Closed)?;
        outcome.await.map_err(|_| TransportError::Closed)?
    }

    /// Queues a batch for `to` without waiting for how its send goes (the hosts'
    /// liveness beats).
    pub(crate) fn post(&self, to: &NodeId, messages: Vec<Message>) {
        let (done, _) = oneshot::channel();
        let _ = self.queue(to).send((messages, done));
    }

    /// The peers some group has sent to.
    pub(crate) fn peers(&self) -> std::collections::BTreeSet<NodeId> {
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn queue(&self, to: &NodeId) -> mpsc::UnboundedSender<Batch> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = peers.get(to) {
            return q.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(send_loop(self.transport.clone(), to.clone(), rx));
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        peers.insert(to.clone(), tx.clone());
        tx
    }
}

impl<T> Drop for PeerMux<T> {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.abort();
        }
    }
}

/// Takes every batch queued for the peer, sends them as one, and tells each group
/// how it went.
async fn send_loop<T: Transport>(transport: Arc<T>, to: NodeId, mut rx: mpsc::UnboundedReceiver<Batch>) {
    while let Some((mut messages, first)) = rx.recv().await {
        let mut waiting = vec![first];
        // The groups ticked together, and their batches are on their way: let every
        // task that is ready run first, so that they join this one. Heartbeats and
        // their answers wait a moment longer for the other groups' (they carry no
        // write, only liveness and read confirmations).
        tokio::task::yield_now().await;
        drain(&mut rx, &mut messages, &mut waiting);
        if messages.iter().all(is_heartbeat) {
            tokio::time::sleep(HEARTBEAT_LINGER).await;
            drain(&mut rx, &mut messages, &mut waiting);
        }
        match transport.send(&to, messages).await {
            Ok(()) => {
                for done in waiting {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                debug!(peer = %to, groups = waiting.len(), error = %e, "a shared send failed");
                let reason = e.to_string();
                for done in waiting {
                    let _ = done.send(Err(TransportError::Unreachable {
                        peer: to.clone(),
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

/// Adds whatever is queued to the batch, up to [`MAX_BATCH`] messages.
fn drain(
    rx: &mut mpsc::UnboundedReceiver<Batch>,
    messages: &mut Vec<Message>,
    waiting: &mut Vec<oneshot::Sender<Result<(), TransportError>>>,
) {
    while messages.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok((more, done)) => {
                messages.extend(more);
                waiting.push(done);
            }
            Err(_) => break,
        }
    }
}

fn is_heartbeat(m: &Message) -> bool {
    matches!(m.body, MessageBody::Heartbeat(_) | MessageBody::HeartbeatResponse(_))
}

/// The transport a host gives each group's node: inbound messages of the group come
/// from the host's one inbox, outbound ones leave through the host's [`PeerMux`].
pub(crate) struct GroupTransport<T> {
    pub(crate) group: GroupId,
    pub(crate) mux: Arc<PeerMux<T>>,
    pub(crate) routes: Arc<GroupRoutes>,
}

#[async_trait]
impl<T: Transport> Transport for GroupTransport<T> {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        self.routes.insert(self.group, &inbox);
        Ok(())
    }

    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.mux.send(to, messages).await
    }

    async fn stop(&self) {
        self.routes.remove(self.group);
    }
}
