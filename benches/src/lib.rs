//! Shared helpers for easyraft's criterion benchmarks.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use raft_core::{Config, Membership, MemStorage, Message, NodeId, RawNode, Role};

/// A cluster of pure cores with an in-memory, lossless message loop: the cost of the
/// protocol alone, with no IO.
pub struct CoreCluster {
    nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    queue: VecDeque<Message>,
    leader: NodeId,
    /// Commands applied on the leader so far.
    pub applied: u64,
}

impl CoreCluster {
    /// `n` voters with node1 elected leader.
    pub fn new(n: usize, max_entries_per_msg: usize) -> Self {
        let ids: Vec<NodeId> = (1..=n).map(|i| NodeId::new(format!("node{i}"))).collect();
        let membership = Membership::with_voters(ids.iter().cloned());
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut c = Config::new(id.clone());
                c.seed = i as u64;
                c.max_entries_per_msg = max_entries_per_msg;
                c.max_inflight_msgs = 256;
                let node = RawNode::new(c, MemStorage::new(membership.clone())).expect("valid config");
                (id.clone(), node)
            })
            .collect();
        let mut cluster = CoreCluster {
            nodes,
            queue: VecDeque::new(),
            leader: ids[0].clone(),
            applied: 0,
        };
        if let Some(l) = cluster.nodes.get_mut(&ids[0]) {
            l.campaign();
        }
        cluster.run();
        assert_eq!(cluster.nodes[&ids[0]].role(), Role::Leader);
        cluster
    }

    /// Proposes `batch` commands of `payload` on the leader, then runs the message loop
    /// until everything is committed and applied everywhere.
    pub fn propose_and_commit(&mut self, payload: &Bytes, batch: usize) {
        let leader = self.nodes.get_mut(&self.leader).expect("leader exists");
        let cmds = vec![payload.clone(); batch];
        leader.propose_batch(cmds).expect("leader accepts");
        self.run();
    }

    fn run(&mut self) {
        loop {
            let mut progressed = false;
            for (id, node) in self.nodes.iter_mut() {
                while node.has_ready() {
                    progressed = true;
                    let rd = node.ready();
                    self.queue.extend(rd.messages);
                    let store = node.storage_mut();
                    store.append(&rd.entries).expect("contiguous");
                    if let Some(hs) = rd.hard_state {
                        store.set_hard_state(hs);
                    }
                    self.queue.extend(rd.persisted_messages);
                    if *id == self.leader {
                        self.applied += rd.committed_entries.len() as u64;
                    }
                    node.advance();
                }
            }
            while let Some(m) = self.queue.pop_front() {
                progressed = true;
                if let Some(n) = self.nodes.get_mut(&m.to) {
                    let _ = n.step(m);
                }
            }
            if !progressed {
                return;
            }
        }
    }
}
