//! Shared helpers for easyraft's criterion benchmarks.

mod counting_vfs;
pub mod http1;
pub mod load;
pub mod net;

use std::time::Duration as StdDuration;

use raft_cluster::{RaftConfig, RaftHandle, StateMachine};

pub use counting_vfs::CountingVfs;

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use raft_core::{
    Config, HardState, HardStateWrites, MemStorage, Membership, MembershipChange, Message, NodeId, RawNode,
    ReadyDriver, Role, Snapshot, SnapshotMeta, Work,
};

/// A driver for `node` that writes every hard state (as a synchronous driver would).
fn driver_for(node: &RawNode<MemStorage>) -> ReadyDriver {
    ReadyDriver::new(node.storage().hard_state()).with_hard_state_writes(HardStateWrites::Every)
}

/// Carries out `node`'s next Ready through `driver`, writing at once: its messages and
/// then those that waited for the write go to `out`; the committed entries count as
/// applied. Returns the rest of the work (committed entries, snapshot).
fn drive_one(node: &mut RawNode<MemStorage>, driver: &mut ReadyDriver, out: &mut impl Extend<Message>) -> Work {
    let rd = node.ready();
    let mut work = driver.on_ready(node, rd);
    out.extend(std::mem::take(&mut work.messages));
    if let Some(job) = &work.persist {
        let store = node.storage_mut();
        if let Some(s) = &job.snapshot {
            store.apply_snapshot(s.clone());
        }
        store.append(&job.entries).expect("contiguous");
        if let Some(hs) = &job.hard_state {
            store.set_hard_state(hs.clone());
        }
        out.extend(driver.on_persisted(node, job.id).expect("the job just handed out"));
    }
    if let Some(e) = work.committed_entries.last() {
        node.applied_to(e.index);
    }
    work
}

/// A cluster of pure cores with an in-memory, lossless message loop: the cost of the
/// protocol alone, with no IO.
pub struct CoreCluster {
    nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    drivers: BTreeMap<NodeId, ReadyDriver>,
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
        let nodes: BTreeMap<NodeId, RawNode<MemStorage>> = ids
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
        let drivers = nodes.iter().map(|(id, n)| (id.clone(), driver_for(n))).collect();
        let mut cluster = CoreCluster {
            nodes,
            drivers,
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

    /// Adds an extra node that knows nothing yet, for membership-change benches.
    pub fn add_spare(&mut self, id: &str) {
        let c = Config::new(id);
        let node = RawNode::new(c, MemStorage::new(Membership::default())).expect("valid config");
        self.drivers.insert(NodeId::new(id), driver_for(&node));
        self.nodes.insert(NodeId::new(id), node);
    }

    /// Proposes a membership change and runs until it (and any joint phase) commits.
    pub fn change_membership(&mut self, changes: &[MembershipChange]) {
        let leader = self.nodes.get_mut(&self.leader).expect("leader exists");
        leader.propose_membership_change(changes).expect("valid change");
        self.run();
        let st = self.nodes[&self.leader].status();
        assert!(!st.membership.is_joint() && st.commit == st.last_index);
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
                let Some(driver) = self.drivers.get_mut(id) else {
                    continue;
                };
                while node.has_ready() {
                    progressed = true;
                    let work = drive_one(node, driver, &mut self.queue);
                    if *id == self.leader {
                        self.applied += work.committed_entries.len() as u64;
                    }
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

/// A leader whose log was compacted into a snapshot of `size` bytes and a new learner
/// that must receive it in chunks of `chunk` bytes.
pub struct SnapshotTransfer {
    leader: RawNode<MemStorage>,
    learner: RawNode<MemStorage>,
    drivers: (ReadyDriver, ReadyDriver),
}

impl SnapshotTransfer {
    /// Sets up the two nodes.
    pub fn new(size: usize, chunk: u64) -> Self {
        let membership = Membership {
            voters: [NodeId::new("leader")].into(),
            learners: [NodeId::new("learner")].into(),
            ..Membership::default()
        };
        let mut store = MemStorage::new(membership.clone());
        store.apply_snapshot(Snapshot {
            meta: SnapshotMeta {
                index: 10,
                term: 1,
                membership,
            },
            data: Bytes::from(vec![0xAB; size]),
        });
        store.set_hard_state(HardState {
            term: 1,
            vote: None,
            commit: 10,
        });
        let mut c = Config::new("leader");
        c.snapshot_chunk_bytes = chunk;
        let leader = RawNode::new(c, store).expect("valid config");
        let learner =
            RawNode::new(Config::new("learner"), MemStorage::new(Membership::default())).expect("valid config");
        let drivers = (driver_for(&leader), driver_for(&learner));
        SnapshotTransfer {
            leader,
            learner,
            drivers,
        }
    }

    /// Elects the leader and runs until the learner installed the snapshot; returns
    /// the installed size.
    pub fn run(mut self) -> usize {
        self.leader.campaign();
        loop {
            let mut to_learner = Vec::new();
            while self.leader.has_ready() {
                drive_one(&mut self.leader, &mut self.drivers.0, &mut to_learner);
            }
            for m in to_learner {
                let _ = self.learner.step(m);
            }
            let mut to_leader = Vec::new();
            while self.learner.has_ready() {
                let work = drive_one(&mut self.learner, &mut self.drivers.1, &mut to_leader);
                if let Some(s) = work.snapshot_to_install() {
                    return s.data.len();
                }
            }
            for m in to_leader {
                let _ = self.leader.step(m);
            }
        }
    }
}

/// Proposes `command` on the node believed to lead (`nodes[*leader]`), following
/// leader hints (or trying the next node) until one accepts it; `leader` is updated.
pub async fn propose_on_leader<SM: StateMachine>(nodes: &[RaftHandle<SM>], leader: &mut usize, command: SM::Command)
where
    SM::Command: Clone,
{
    loop {
        match nodes[*leader].propose(command.clone()).await {
            Ok(_) => return,
            Err(e) => {
                let hint = e.leader_hint().and_then(|h| nodes.iter().position(|n| n.id() == h));
                *leader = hint.unwrap_or((*leader + 1) % nodes.len());
                if hint.is_none() {
                    tokio::time::sleep(StdDuration::from_millis(10)).await;
                }
            }
        }
    }
}

/// The cluster benches' timing: timeouts roomy enough that a busy machine does not
/// trigger elections mid-bench.
pub fn cluster_config() -> RaftConfig {
    RaftConfig {
        election_timeout: StdDuration::from_millis(500),
        heartbeat_interval: StdDuration::from_millis(50),
        request_timeout: StdDuration::from_secs(10),
        ..RaftConfig::default()
    }
}

/// A fresh directory for bench data: in `EASYRAFT_BENCH_DIR` when set (to put the data
/// directories on another disk), else in the system temp dir.
pub fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("EASYRAFT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("EASYRAFT_BENCH_DIR is writable"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}
