//! The node task never waits for the disk or the state machine: a slow apply, a
//! stalled fsync on a follower and on the leader, and a read in flight across a
//! leader's death. Real files with fsync (`FileStorage`) under a wrapper that can
//! stall its writes; the in-memory network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_cluster::testing::Counter;
use raft_cluster::{BoxError, Cluster, MemNetwork, MemTransport, RaftConfig, RaftHandle, StateMachine};
use raft_core::{Entry, HardState, InitialState, LogIndex, NodeId, Role, Snapshot, Storage, StorageError, Term};
use raft_storage::{FileStorage, LogStore, Options};

const PATIENCE: Duration = Duration::from_secs(30);

/// A `FileStorage` whose writes sleep while `stalled` is set (a stuck disk).
struct Stalling {
    inner: FileStorage,
    stalled: Arc<AtomicBool>,
}

impl Stalling {
    fn wait(&self) {
        while self.stalled.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Storage for Stalling {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.inner.initial_state()
    }
    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        self.inner.entries(low, high, max_bytes)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.inner.term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.inner.last_index()
    }
    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.inner.snapshot()
    }
}

impl LogStore for Stalling {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.wait();
        self.inner.append(entries)
    }
    fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        self.wait();
        self.inner.set_hard_state(hs)
    }
    fn save_snapshot(&mut self, s: &Snapshot) -> Result<(), StorageError> {
        self.wait();
        self.inner.save_snapshot(s)
    }
}

/// A counter whose every apply takes `delay`.
struct Slow {
    inner: Counter,
    delay: Duration,
}

impl StateMachine for Slow {
    type Command = u64;
    type Response = u64;
    type Query = ();
    type QueryResponse = u64;

    fn apply(&mut self, index: LogIndex, add: u64) -> u64 {
        std::thread::sleep(self.delay);
        self.inner.apply(index, add)
    }
    fn query(&self, q: ()) -> u64 {
        self.inner.query(q)
    }
    fn snapshot(&self) -> Result<Bytes, BoxError> {
        self.inner.snapshot()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        self.inner.restore(data)
    }
}

type Node = RaftHandle<Slow>;

struct Setup {
    cluster: Cluster<Slow, Stalling, MemTransport>,
    net: MemNetwork,
    stalls: Vec<(NodeId, Arc<AtomicBool>)>,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start(config: RaftConfig, apply_delay: Duration) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let ids: Vec<NodeId> = (1..=3).map(|i| NodeId::new(format!("node{i}"))).collect();
        let stalls: Vec<(NodeId, Arc<AtomicBool>)> = ids.iter().map(|id| (id.clone(), Arc::default())).collect();
        let root = dir.path().to_owned();
        let by_id = stalls.clone();
        let net = MemNetwork::new();
        let tnet = net.clone();
        let cluster = Cluster::start(
            ids,
            config,
            move |id| {
                let stalled = by_id
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                let inner = FileStorage::open(root.join(id.as_str()), Options::default())
                    .map_err(|e| raft_cluster::Error::Storage(e.into()))?;
                Ok(Stalling { inner, stalled })
            },
            move |_| Slow {
                inner: Counter::default(),
                delay: apply_delay,
            },
            move |id| tnet.transport(id.clone()),
        )
        .await
        .expect("cluster starts");
        Setup {
            cluster,
            net,
            stalls,
            _dir: dir,
        }
    }

    fn stall(&self, id: &NodeId, on: bool) {
        if let Some((_, s)) = self.stalls.iter().find(|(i, _)| i == id) {
            s.store(on, Ordering::Relaxed);
        }
    }

    async fn leader(&self) -> Node {
        self.cluster.wait_for_leader(PATIENCE).await.expect("a leader")
    }

    fn nodes(&self) -> Vec<Node> {
        self.cluster.nodes().cloned().collect()
    }

    /// The highest term any node has seen.
    fn max_term(&self) -> u64 {
        self.nodes().iter().map(|n| n.view().term).max().unwrap_or(0)
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Proposes `add` on whoever leads until one is acknowledged; returns the response.
async fn put(s: &Setup, add: u64) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let leader = s.leader().await;
        match leader.propose(add).await {
            Ok(v) => return v,
            Err(e) => {
                assert!(Instant::now() < deadline, "no write acknowledged: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_of_50_ms_per_entry_causes_no_election_and_reads_stay_linearizable() {
    let config = RaftConfig {
        request_timeout: Duration::from_secs(20),
        ..RaftConfig::fast()
    };
    let s = Setup::start(config, Duration::from_millis(50)).await;
    let leader = s.leader().await;
    let term = s.max_term();
    // 40 entries of 50 ms each: 2 s of applying on every node, 13 election timeouts.
    let mut writers = Vec::new();
    for i in 0..4u64 {
        let l = leader.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for j in 0..10u64 {
                acked.push(l.propose(i * 100 + j + 1).await.expect("a write on a live leader"));
            }
            acked
        }));
    }
    let mut total = 0u64;
    for w in writers {
        w.await.expect("writer");
    }
    for i in 0..4u64 {
        for j in 0..10u64 {
            total += i * 100 + j + 1;
        }
    }
    assert_eq!(s.max_term(), term, "a slow state machine started an election");
    assert_eq!(leader.view().role, Role::Leader);
    // Every node's linearizable read sees every acknowledged write.
    for n in s.nodes() {
        assert_eq!(n.read(()).await.expect("read"), total, "read on {}", n.id());
    }
    assert_eq!(s.max_term(), term);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_fsync_on_a_follower_loses_nothing_and_stalls_nobody() {
    let config = RaftConfig {
        disk_stall_timeout: Duration::from_millis(100),
        request_timeout: Duration::from_secs(10),
        ..RaftConfig::fast()
    };
    let election = config.election_timeout;
    let s = Setup::start(config, Duration::ZERO).await;
    let leader = s.leader().await;
    let term = s.max_term();
    let follower = s
        .nodes()
        .into_iter()
        .find(|n| n.id() != leader.id())
        .expect("a follower");

    // A follower's disk stalls for 2 election timeouts: the others commit without
    // it, heartbeats go on, nobody campaigns, and the follower says it is stalled.
    s.stall(follower.id(), true);
    let stalled_until = Instant::now() + election * 2;
    let mut saw_stalled = false;
    let mut acked = 0;
    while Instant::now() < stalled_until {
        let v = put(&s, 1).await;
        assert!(v > acked, "acknowledged values only grow");
        acked = v;
        saw_stalled |= follower.view().disk_stalled;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_until("the follower reports its stalled disk", || {
        saw_stalled |= follower.view().disk_stalled;
        saw_stalled
    })
    .await;
    s.stall(follower.id(), false);
    assert_eq!(s.max_term(), term, "a stalled follower disk caused an election");
    assert_eq!(leader.view().role, Role::Leader);
    wait_until("the follower is healthy again", || !follower.view().disk_stalled).await;

    let after = put(&s, 7).await;
    assert!(
        after >= acked + 7,
        "acknowledged writes were lost: {after} < {acked} + 7"
    );
    wait_until("the follower catches up", || {
        follower.view().applied >= leader.view().applied
    })
    .await;
    for n in s.nodes() {
        assert_eq!(n.read(()).await.expect("read"), after, "read on {}", n.id());
    }
}

/// Lets a stalled disk go again when dropped, so a failing test ends instead of
/// leaving a writer thread asleep.
struct Unstall<'a>(&'a Setup, NodeId);

impl Drop for Unstall<'_> {
    fn drop(&mut self) {
        self.0.stall(&self.1, false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_fsync_stalls_reports_it_steps_down_and_loses_nothing() {
    let config = RaftConfig {
        disk_stall_timeout: Duration::from_millis(100),
        request_timeout: Duration::from_secs(10),
        ..RaftConfig::fast()
    };
    let s = Setup::start(config, Duration::ZERO).await;
    let leader = s.leader().await;
    let before = put(&s, 5).await;
    s.stall(leader.id(), true);
    let unstall = Unstall(&s, leader.id().clone());
    // A write to the stalled leader gets stuck in its log writer (its outcome is
    // unknown); it is what makes the stall visible.
    let _stuck = {
        let l = leader.clone();
        tokio::spawn(async move { l.propose(0).await })
    };
    wait_until("the stalled leader reports its disk", || leader.view().disk_stalled).await;
    wait_until("the stalled leader steps down", || leader.view().role != Role::Leader).await;
    // A node with a healthy disk leads and acknowledges writes; nothing is lost.
    let deadline = Instant::now() + PATIENCE;
    let after = loop {
        let l = s.leader().await;
        if l.id() != leader.id() {
            if let Ok(v) = l.propose(7).await {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "no healthy leader acknowledged a write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        after >= before + 7,
        "acknowledged writes were lost: {after} < {before} + 7"
    );
    drop(unstall);
    wait_until("the old leader catches up and is healthy", || {
        leader.view().applied >= s.nodes().iter().map(|n| n.view().applied).max().unwrap_or(0)
            && !leader.view().disk_stalled
    })
    .await;
    let total = s.leader().await.read(()).await.expect("read");
    assert!(total >= after);
    for n in s.nodes() {
        assert_eq!(n.read(()).await.expect("read"), total, "read on {}", n.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_in_flight_when_the_leader_dies_is_answered_by_the_next_leader() {
    let config = RaftConfig {
        request_timeout: Duration::from_secs(5),
        ..RaftConfig::fast()
    };
    let mut s = Setup::start(config, Duration::ZERO).await;
    let leader = s.leader().await;
    let value = put(&s, 42).await;
    let follower = s
        .nodes()
        .into_iter()
        .find(|n| n.id() != leader.id())
        .expect("a follower");
    // The follower's ReadIndex goes to a leader that will never answer.
    s.net.isolate(leader.id());
    let reader = {
        let f = follower.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (f.read(()).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dead = leader.id().clone();
    s.cluster.kill(&dead).await;
    s.net.heal();
    let (answer, took) = reader.await.expect("reader");
    let answer = answer.expect("the read is answered once a new leader is elected, not after a timeout");
    assert_eq!(answer, value);
    assert!(
        s.nodes().iter().any(|n| n.view().role == Role::Leader),
        "a new leader was elected"
    );
    eprintln!(
        "read across the leader's death took {took:?} (request timeout 5 s, election timeout {:?})",
        RaftConfig::fast().election_timeout
    );
}
