//! Partitions for any transport: a wrapper that refuses to send across cut links, so
//! tests can partition a cluster that talks over real sockets, and that can damage
//! snapshot data on the way (a bit flip in transit).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use raft_core::{Message, MessageBody, NodeId};

use crate::transport::{Inbox, Transport, TransportError};

/// The cut links shared by every [`FaultyTransport`] of a test.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    cut: Arc<Mutex<BTreeSet<(NodeId, NodeId)>>>,
    /// Snapshot chunks still to damage, and those damaged so far.
    to_corrupt: Arc<AtomicUsize>,
    corrupted: Arc<AtomicUsize>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeSet<(NodeId, NodeId)>) -> R) -> R {
        f(&mut self.cut.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&self, from: &NodeId, to: &NodeId) {
        self.with(|c| c.insert((from.clone(), to.clone())));
    }

    /// Splits `groups` from each other, both ways.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        self.with(|c| {
            for (i, a) in groups.iter().enumerate() {
                for b in groups.iter().skip(i + 1) {
                    for x in a.iter() {
                        for y in b.iter() {
                            c.insert((x.clone(), y.clone()));
                            c.insert((y.clone(), x.clone()));
                        }
                    }
                }
            }
        });
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.with(|c| c.clear());
    }

    /// Flips one bit in each of the next `n` snapshot chunks sent (that carry data).
    pub fn corrupt_snapshot_chunks(&self, n: usize) {
        self.to_corrupt.store(n, Ordering::SeqCst);
    }

    /// How many snapshot chunks were damaged so far.
    pub fn corrupted_chunks(&self) -> usize {
        self.corrupted.load(Ordering::SeqCst)
    }

    /// Damages `m` if it is a snapshot chunk and chunks are still to be damaged.
    fn maybe_corrupt(&self, m: &mut Message) {
        let MessageBody::InstallSnapshot(chunk) = &mut m.body else {
            return;
        };
        if chunk.data.is_empty() {
            return;
        }
        let take = self
            .to_corrupt
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if take.is_ok() {
            let mut data = chunk.data.to_vec();
            let mid = data.len() / 2;
            data[mid] ^= 0x10;
            chunk.data = data.into();
            self.corrupted.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether `from` cannot send to `to`.
    pub fn is_cut(&self, from: &NodeId, to: &NodeId) -> bool {
        self.with(|c| c.contains(&(from.clone(), to.clone())))
    }
}

/// Wraps a transport; sends across a cut link fail as if the peer were unreachable.
pub struct FaultyTransport<T> {
    inner: T,
    me: NodeId,
    faults: Faults,
}

impl<T> FaultyTransport<T> {
    /// Wraps `inner`, the transport of node `me`.
    pub fn new(me: impl Into<NodeId>, inner: T, faults: Faults) -> Self {
        FaultyTransport {
            inner,
            me: me.into(),
            faults,
        }
    }
}

#[async_trait]
impl<T: Transport> Transport for FaultyTransport<T> {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        self.inner.start(inbox).await
    }

    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        if self.faults.is_cut(&self.me, to) {
            return Err(TransportError::Unreachable {
                peer: to.clone(),
                reason: "link cut by the test".into(),
            });
        }
        let mut messages = messages;
        for m in &mut messages {
            self.faults.maybe_corrupt(m);
        }
        self.inner.send(to, messages).await
    }

    async fn stop(&self) {
        self.inner.stop().await;
    }
}
