//! What every cluster test shares: a KV state machine that records every apply, a
//! cluster of `FileStorage` nodes in a temp dir on a `MemNetwork`, a client that
//! follows leader hints and retries, background writers, and the final checker.
//!
//! The rules the checker relies on: a write's id is unique, a retry keeps the id (the
//! KV applies an id once, so retrying after an unknown outcome is safe), and each key
//! is written by one sequential writer with increasing values.
//!
//! Every wait polls a condition under a generous deadline: these tests run on a
//! shared, noisy machine and never assert on timing.
// Each test binary uses its own part of the harness; `pub` here means "shared by
// the tests", not a crate API.
#![allow(dead_code, unreachable_pub)]

pub mod check;
pub mod client;
pub mod counting;
pub mod kv;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use raft_cluster::{Cluster, Error, MemNetwork, MemTransport, RaftConfig, RaftHandle};
use raft_core::{Membership, MembershipChange, NodeId, Role, Status};
use raft_storage::{FileStorage, Options};
use tempfile::TempDir;
use tokio::time::{sleep, Instant};

// Not every test binary uses every re-export.
#[allow(unused_imports)]
pub use check::check_history;
#[allow(unused_imports)]
pub use client::{expect_refused, Ack, Client, Writers};
pub use kv::{Kv, KvState, Put};

/// A node of the test cluster.
pub type Node = RaftHandle<Kv>;

/// How long any single condition may take before the test fails. Generous: the
/// machine is shared with compilers.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `node1` .. `node{n}`.
pub fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| NodeId::new(format!("node{i}"))).collect()
}

/// Polls `cond` every 10 ms until it holds; panics after `PATIENCE` naming `what`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {PATIENCE:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// `RaftConfig::fast()` with a snapshot interval.
pub fn config(snapshot_interval: u64) -> RaftConfig {
    RaftConfig {
        snapshot_interval,
        ..RaftConfig::fast()
    }
}

pub(crate) type Nodes = Arc<RwLock<BTreeMap<NodeId, Node>>>;
type States = Arc<Mutex<BTreeMap<NodeId, Arc<Mutex<KvState>>>>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cluster of KV nodes on `FileStorage` (fsync on) in one temp dir, connected by a
/// `MemNetwork`.
pub struct TestCluster {
    pub cluster: Cluster<Kv, FileStorage, MemTransport>,
    pub net: MemNetwork,
    pub config: RaftConfig,
    nodes: Nodes,
    states: States,
    acked: Arc<Mutex<Vec<Ack>>>,
    next_writer: Arc<AtomicU64>,
    /// How often a restart found the directory still locked by the killed node's
    /// in-flight persist (diagnostics).
    pub lock_retries: Arc<AtomicUsize>,
    pub dir: TempDir,
}

impl TestCluster {
    /// Starts `n` founding nodes and waits for a leader.
    pub async fn start(n: usize, config: RaftConfig) -> TestCluster {
        Self::start_with(n, config, Options::default().segment_size(16 << 10)).await
    }

    /// Starts `n` founding nodes whose storages use `options`, and waits for a leader.
    pub async fn start_with(n: usize, config: RaftConfig, options: Options) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let net = MemNetwork::new();
        let states: States = Arc::default();
        let lock_retries = Arc::new(AtomicUsize::new(0));
        let root: PathBuf = dir.path().to_owned();
        let retries = lock_retries.clone();
        let make_storage = move |id: &NodeId| open_storage(&root.join(id.as_str()), options.clone(), &retries);
        let sm_states = states.clone();
        let make_sm = move |id: &NodeId| {
            let state = Arc::new(Mutex::new(KvState::default()));
            lock(&sm_states).insert(id.clone(), state.clone());
            Kv::new(state)
        };
        let tnet = net.clone();
        let cluster = Cluster::start(ids(n), config.clone(), make_storage, make_sm, move |id| {
            tnet.transport(id.clone())
        })
        .await
        .expect("cluster starts");
        let tc = TestCluster {
            cluster,
            net,
            config,
            nodes: Arc::default(),
            states,
            acked: Arc::default(),
            next_writer: Arc::new(AtomicU64::new(1)),
            lock_retries,
            dir,
        };
        tc.sync_nodes();
        tc.leader().await;
        tc
    }

    fn sync_nodes(&self) {
        let now: BTreeMap<NodeId, Node> = self.cluster.nodes().map(|h| (h.id().clone(), h.clone())).collect();
        *self.nodes.write().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// The running node `id`.
    pub fn node(&self, id: &NodeId) -> Node {
        self.cluster
            .node(id)
            .unwrap_or_else(|| panic!("{id} is not running"))
            .clone()
    }

    /// The ids of the running nodes.
    pub fn running(&self) -> Vec<NodeId> {
        self.cluster.nodes().map(|h| h.id().clone()).collect()
    }

    /// The running nodes other than `id`.
    pub fn others(&self, id: &NodeId) -> Vec<NodeId> {
        self.running().into_iter().filter(|o| o != id).collect()
    }

    /// Waits for a leader a majority of the running nodes agree on.
    pub async fn leader(&self) -> Node {
        self.cluster
            .wait_for_leader(PATIENCE)
            .await
            .expect("a leader within the deadline")
    }

    /// Waits until one of `among` leads in a term above `after`, as seen by itself.
    pub async fn leader_among(&self, among: &[NodeId], after: u64) -> Node {
        let pick = || {
            among
                .iter()
                .filter_map(|id| self.cluster.node(id))
                .find(|h| {
                    let v = h.view();
                    v.role == Role::Leader && v.term > after
                })
                .cloned()
        };
        wait_until("a leader among the given nodes", || pick().is_some()).await;
        pick().expect("checked")
    }

    /// The leader's status, retried until some node answers as leader.
    pub async fn leader_status(&self) -> Status {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let leader = self.leader().await;
            if let Ok(st) = leader.status().await {
                if st.role == Role::Leader {
                    return st;
                }
            }
            assert!(Instant::now() < deadline, "no leader answered its status");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills `id` abruptly (its task is dropped mid-flight, nothing is flushed).
    pub async fn kill(&mut self, id: &NodeId) {
        self.cluster.kill(id).await;
        self.sync_nodes();
    }

    /// Stops `id` gracefully.
    pub async fn stop_node(&mut self, id: &NodeId) {
        self.cluster.stop_node(id).await;
        self.sync_nodes();
    }

    /// Stops every node gracefully.
    pub async fn stop_all(&mut self) {
        self.cluster.stop().await;
        self.sync_nodes();
    }

    /// Restarts `id` from its data directory.
    pub async fn restart(&mut self, id: &NodeId) -> Node {
        let h = self.cluster.restart(id.clone()).await.expect("restart from disk");
        self.sync_nodes();
        h
    }

    /// Starts a brand-new, empty node (not a member until the leader adds it).
    pub async fn add_node(&mut self, id: &NodeId) -> Node {
        let h = self.cluster.add_node(id.clone()).await.expect("new node starts");
        self.sync_nodes();
        h
    }

    /// The KV state of node `id` as its state machine holds it now.
    pub fn state(&self, id: &NodeId) -> KvState {
        let states = lock(&self.states);
        let s = states.get(id).unwrap_or_else(|| panic!("no state machine for {id}"));
        let s = lock(s).clone();
        s
    }

    /// Every write acknowledged so far.
    pub fn acked(&self) -> Vec<Ack> {
        lock(&self.acked).clone()
    }

    /// A client over every running node (the set follows kills and restarts).
    pub fn client(&self) -> Client {
        Client::new(self.nodes.clone(), self.acked.clone())
    }

    /// A fresh writer number: writer `w` writes key `w{w}` with ids `w * 1e6 + seq`.
    pub fn new_writer(&self) -> u64 {
        self.next_writer.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts `clients` sequential writers over every running node, each making up to
    /// `per_client` acknowledged writes (or fewer if stopped).
    pub fn spawn_writers(&self, clients: usize, per_client: u64) -> Writers {
        self.spawn_writers_with(self.client(), clients, per_client)
    }

    /// As [`TestCluster::spawn_writers`], through `client`.
    pub fn spawn_writers_with(&self, client: Client, clients: usize, per_client: u64) -> Writers {
        let writers: Vec<u64> = (0..clients).map(|_| self.new_writer()).collect();
        Writers::spawn(client, writers, per_client)
    }

    /// Waits until at least `n` writes have been acknowledged in total.
    pub async fn wait_acked(&self, n: usize) {
        wait_until(&format!("{n} acknowledged writes"), || lock(&self.acked).len() >= n).await;
    }

    /// Runs a membership change through whichever node leads, retrying (leader
    /// changes, a previous change still in flight, a timeout whose outcome is
    /// unknown) until it succeeds or the leader's configuration satisfies `done`
    /// and is not joint (an earlier attempt did it).
    pub async fn change_membership(&self, changes: Vec<MembershipChange>, done: impl Fn(&Membership) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let leader = self.leader().await;
            let e = match leader.change_membership(changes.clone()).await {
                Ok(()) => return,
                Err(e) => e,
            };
            let st = self.leader_status().await;
            if done(&st.membership) && !st.membership.is_joint() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "membership change {changes:?} not done ({e}); the leader has {:?}",
                st.membership
            );
            eprintln!("change_membership {changes:?} on {}: {e}; retrying", leader.id());
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the leader has replicated everything it has committed to `id`.
    pub async fn wait_caught_up(&self, id: &NodeId) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let st = self.leader_status().await;
            if st.progress.get(id).is_some_and(|p| p.match_index >= st.commit) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never caught up: {:?}",
                st.progress.get(id)
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// The final check, run at the end of every test once the writers are joined:
    /// waits until every running member's state machine equals the leader's
    /// (linearizable read), then checks that history: no index applied twice, every
    /// acknowledged write applied where its client was told, no acknowledged value
    /// lost. Returns the agreed state.
    pub async fn check(&self) -> KvState {
        let deadline = Instant::now() + PATIENCE;
        let (want, members) = loop {
            let leader = self.leader().await;
            let st = leader.status().await;
            let read = leader.read(()).await;
            if let (Ok(st), Ok(want)) = (st, read) {
                let members: BTreeSet<NodeId> = st
                    .membership
                    .members()
                    .into_iter()
                    .filter(|m| self.cluster.node(m).is_some())
                    .collect();
                if members.iter().all(|m| self.state(m) == want) {
                    break (want, members);
                }
                if Instant::now() >= deadline {
                    for m in &members {
                        let s = self.state(m);
                        eprintln!(
                            "{m}: {} applies, last {:?}, view {:?}",
                            s.applied.len(),
                            s.applied.last(),
                            self.node(m).view()
                        );
                    }
                    panic!(
                        "state machines never converged on the leader's ({} applies)",
                        want.applied.len()
                    );
                }
            }
            assert!(Instant::now() < deadline, "no linearizable read on the leader");
            sleep(Duration::from_millis(20)).await;
        };
        check_history(&want, &self.acked());
        eprintln!(
            "check: {} members agree on {} applies ({} distinct writes, {} acknowledged)",
            members.len(),
            want.applied.len(),
            want.first_applied.len(),
            self.acked().len()
        );
        want
    }
}

/// Opens a node's directory; a node killed a moment ago may still hold its lock
/// while its last persist finishes on a blocking thread, so wait for that.
fn open_storage(dir: &std::path::Path, options: Options, retries: &AtomicUsize) -> Result<FileStorage, Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match FileStorage::open(dir, options.clone()) {
            Err(raft_storage::Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r.map_err(|e| Error::Storage(Box::new(e))),
        }
    }
}
