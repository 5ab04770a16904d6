//! An in-memory network for tests (yours and ours): every node registers its inbox;
//! faults are injected by the test (drops, delays, partitions, one-way cuts).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use raft_core::{Message, NodeId};

use crate::transport::{Inbox, Transport, TransportError};

#[derive(Default)]
struct NetState {
    inboxes: BTreeMap<NodeId, Inbox>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Probability (0..=1) of dropping each message.
    drop_rate: f64,
    delay: Duration,
    rng: u64,
}

impl NetState {
    /// xorshift64*: enough to decide drops, seeded by the test.
    fn chance(&mut self) -> f64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A simulated network shared by the nodes of one process.
#[derive(Clone, Default)]
pub struct MemNetwork {
    state: Arc<Mutex<NetState>>,
}

impl MemNetwork {
    /// A network with no faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, NetState> {
        // A panic while holding this lock can only come from a bug in this file; the
        // state stays consistent, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transport for node `id`.
    pub fn transport(&self, id: impl Into<NodeId>) -> MemTransport {
        MemTransport {
            me: id.into(),
            net: self.clone(),
        }
    }

    /// Drops each message with probability `rate`, decided by a generator seeded
    /// with `seed`.
    pub fn set_drop_rate(&self, rate: f64, seed: u64) {
        let mut s = self.state();
        s.drop_rate = rate.clamp(0.0, 1.0);
        s.rng = seed;
    }

    /// Delays every message by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&self, from: &NodeId, to: &NodeId) {
        self.state().cut.insert((from.clone(), to.clone()));
    }

    /// Splits the nodes into groups that cannot talk to each other.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        let mut s = self.state();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a.iter() {
                        for y in b.iter() {
                            s.cut.insert((x.clone(), y.clone()));
                        }
                    }
                }
            }
        }
    }

    /// Cuts `id` off from every other registered node, both ways.
    pub fn isolate(&self, id: &NodeId) {
        let mut s = self.state();
        let others: Vec<NodeId> = s.inboxes.keys().filter(|o| *o != id).cloned().collect();
        for o in others {
            s.cut.insert((id.clone(), o.clone()));
            s.cut.insert((o, id.clone()));
        }
    }

    /// Removes every cut, drop rate and delay.
    pub fn heal(&self) {
        let mut s = self.state();
        s.cut.clear();
        s.drop_rate = 0.0;
        s.delay = Duration::ZERO;
    }

    fn route(&self, from: &NodeId, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        let (inbox, delay, kept) = {
            let mut s = self.state();
            let Some(inbox) = s.inboxes.get(to).cloned() else {
                return Err(TransportError::Unreachable {
                    peer: to.clone(),
                    reason: "not registered".into(),
                });
            };
            if s.cut.contains(&(from.clone(), to.clone())) {
                return Err(TransportError::Unreachable {
                    peer: to.clone(),
                    reason: "link cut".into(),
                });
            }
            let rate = s.drop_rate;
            let kept: Vec<Message> = messages
                .into_iter()
                .filter(|_| rate == 0.0 || s.chance() >= rate)
                .collect();
            (inbox, s.delay, kept)
        };
        if delay.is_zero() {
            for m in kept {
                let _ = inbox.deliver(m);
            }
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                for m in kept {
                    let _ = inbox.deliver(m);
                }
            });
        }
        Ok(())
    }
}

/// One node's end of a [`MemNetwork`].
#[derive(Clone)]
pub struct MemTransport {
    me: NodeId,
    net: MemNetwork,
}

#[async_trait]
impl Transport for MemTransport {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        self.net.state().inboxes.insert(self.me.clone(), inbox);
        Ok(())
    }

    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.net.route(&self.me, to, messages)
    }

    async fn stop(&self) {
        self.net.state().inboxes.remove(&self.me);
    }
}
