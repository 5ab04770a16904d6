//! A tiny synchronous harness for focused protocol tests: nodes with MemStorage, a
//! driver that carries out each Ready by the contract (through `ReadyDriver`, each
//! write completed at once), and a message queue the test controls (deliver all, drop
//! some, cut links).

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use raft_core::{
    Config, Entry, HardStateWrites, MemStorage, Membership, Message, MessageBody, NodeId, RawNode, ReadState,
    ReadyDriver, Role,
};

pub fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

pub fn config(name: &str, seed: u64) -> Config {
    let mut c = Config::new(name);
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.seed = seed;
    c
}

pub struct Net {
    pub nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    /// Each node's Ready driver (made at its first Ready, again at a restart).
    pub drivers: BTreeMap<NodeId, ReadyDriver>,
    pub queue: VecDeque<Message>,
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    /// Snapshots installed through Ready, per node.
    pub installed: BTreeMap<NodeId, Vec<raft_core::Snapshot>>,
    pub reads: BTreeMap<NodeId, Vec<ReadState>>,
    /// Links that drop everything (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub configs: BTreeMap<NodeId, Config>,
}

impl Net {
    pub fn new(names: &[&str]) -> Self {
        Self::with_config(names, |_| {})
    }

    pub fn with_config(names: &[&str], tweak: impl Fn(&mut Config)) -> Self {
        let membership = Membership::with_voters(names.iter().copied());
        let mut net = Net {
            nodes: BTreeMap::new(),
            drivers: BTreeMap::new(),
            queue: VecDeque::new(),
            applied: BTreeMap::new(),
            installed: BTreeMap::new(),
            reads: BTreeMap::new(),
            cut: BTreeSet::new(),
            configs: BTreeMap::new(),
        };
        for (i, n) in names.iter().enumerate() {
            let mut c = config(n, i as u64 + 1);
            tweak(&mut c);
            net.configs.insert(id(n), c.clone());
            let node = RawNode::new(c, MemStorage::new(membership.clone())).unwrap();
            net.nodes.insert(id(n), node);
        }
        net
    }

    /// Adds a node that knows nothing yet (it learns the configuration from the leader).
    pub fn add_empty_node(&mut self, n: &str, tweak: impl Fn(&mut Config)) {
        let mut c = config(n, self.nodes.len() as u64 + 100);
        tweak(&mut c);
        self.configs.insert(id(n), c.clone());
        let node = RawNode::new(c, MemStorage::new(Membership::default())).unwrap();
        self.nodes.insert(id(n), node);
    }

    /// Snapshots `n` at its applied index and compacts its log.
    pub fn compact(&mut self, n: &str, data: &'static [u8]) -> u64 {
        let node = self.node(n);
        let applied = node.status().applied;
        let snap = node.create_snapshot(applied, Bytes::from_static(data)).unwrap();
        node.storage_mut().apply_snapshot(snap);
        applied
    }

    /// Cuts `lagging` off while `leader` commits `n` commands, then compacts the
    /// leader's log into a snapshot of `state` and heals: `lagging` now needs the
    /// snapshot. Returns the snapshot's index.
    pub fn leave_behind(&mut self, lagging: &str, leader: &str, n: u8, state: &'static [u8]) -> u64 {
        self.isolate(lagging);
        for i in 0..n {
            self.node(leader).propose(Bytes::from(vec![i])).unwrap();
        }
        self.settle();
        let at = self.compact(leader, state);
        self.heal();
        at
    }

    /// Crashes `n` and restarts it from its storage.
    pub fn restart(&mut self, n: &str) {
        let store = self.nodes.remove(&id(n)).unwrap().into_storage();
        let c = self.configs[&id(n)].clone();
        self.drivers.remove(&id(n));
        self.nodes.insert(id(n), RawNode::new(c, store).unwrap());
    }

    pub fn node(&mut self, n: &str) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id(n)).unwrap()
    }

    /// Carries out every pending Ready of every node; messages go to the queue. Every
    /// hard state is written (commit indexes too), and each write completes at once.
    pub fn drive(&mut self) {
        loop {
            let mut any = false;
            for (nid, node) in self.nodes.iter_mut() {
                let driver = self.drivers.entry(nid.clone()).or_insert_with(|| {
                    ReadyDriver::new(node.storage().hard_state()).with_hard_state_writes(HardStateWrites::Every)
                });
                while node.has_ready() {
                    any = true;
                    let rd = node.ready();
                    let work = driver.on_ready(node, rd);
                    self.queue.extend(work.messages);
                    if let Some(job) = work.persist {
                        let store = node.storage_mut();
                        if let Some(s) = job.snapshot {
                            store.apply_snapshot(s.clone());
                            self.installed.entry(nid.clone()).or_default().push(s);
                        }
                        store.append(&job.entries).unwrap();
                        if let Some(hs) = job.hard_state {
                            store.set_hard_state(hs);
                        }
                        self.queue.extend(driver.on_persisted(node, job.id).unwrap());
                    }
                    if let Some(e) = work.committed_entries.last() {
                        node.applied_to(e.index);
                    }
                    self.applied
                        .entry(nid.clone())
                        .or_default()
                        .extend(work.committed_entries);
                    self.reads.entry(nid.clone()).or_default().extend(work.read_states);
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Takes every queued message (after driving all nodes).
    pub fn take(&mut self) -> Vec<Message> {
        self.drive();
        self.queue.drain(..).collect()
    }

    pub fn deliver(&mut self, m: Message) {
        if self.cut.contains(&(m.from.clone(), m.to.clone())) {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&m.to) {
            node.step(m).unwrap();
        }
    }

    /// Delivers messages until the network is quiet (bounded).
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let msgs = self.take();
            if msgs.is_empty() {
                return;
            }
            for m in msgs {
                self.deliver(m);
            }
        }
        panic!("network did not settle");
    }

    pub fn tick_all(&mut self, n: usize) {
        for _ in 0..n {
            for node in self.nodes.values_mut() {
                node.tick();
            }
            self.settle();
        }
    }

    /// Makes `n` the leader by campaigning and settling.
    pub fn elect(&mut self, n: &str) {
        self.node(n).campaign();
        self.settle();
        assert_eq!(self.node(n).role(), Role::Leader, "{}", self.node(n).describe());
    }

    pub fn isolate(&mut self, n: &str) {
        let names: Vec<NodeId> = self.nodes.keys().cloned().collect();
        for other in names {
            self.cut.insert((id(n), other.clone()));
            self.cut.insert((other, id(n)));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn applied_commands(&self, n: &str) -> Vec<Bytes> {
        self.applied
            .get(&id(n))
            .map(|es| {
                es.iter()
                    .filter_map(|e| match &e.payload {
                        raft_core::EntryPayload::Command(c) => Some(c.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn log(&self, n: &str) -> Vec<(u64, u64)> {
        let node = &self.nodes[&id(n)];
        let st = node.status();
        use raft_core::Storage;
        let store = node.storage();
        (st.first_index..=store.last_index().unwrap())
            .map(|i| (i, store.term(i).unwrap()))
            .collect()
    }
}

/// A matcher for the messages whose body is the named [`MessageBody`] variant, as in
/// `count(&msgs, kind!(RequestVote))`: typed, so a misspelt kind does not compile.
/// (Not every test file uses it, as with the rest of the harness.)
#[allow(unused_macros)]
macro_rules! kind {
    ($variant:ident) => {
        |body: &raft_core::MessageBody| matches!(body, raft_core::MessageBody::$variant { .. })
    };
}
#[allow(unused_imports)]
pub(crate) use kind;

/// Whether `m`'s body is of the kind `kind` matches (see [`kind!`]).
pub fn is_kind(m: &Message, kind: impl Fn(&MessageBody) -> bool) -> bool {
    kind(&m.body)
}

/// The messages in `msgs` whose body is of the kind `kind` matches (see [`kind!`]).
pub fn count(msgs: &[Message], kind: impl Fn(&MessageBody) -> bool) -> usize {
    msgs.iter().filter(|m| kind(&m.body)).count()
}

pub fn body(m: &Message) -> &MessageBody {
    &m.body
}
