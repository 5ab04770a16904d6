//! Snapshots as streams, checked before they replace anything: a 1 GiB state
//! snapshots and reaches a new learner with the process's memory barely moving; a
//! chunk damaged in transit is refused and sent again; a snapshot the state machine
//! cannot read is refused and the node keeps running. Real files with fsync
//! (`FileStorage`), the in-memory network.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_cluster::testing::Counter;
use raft_cluster::{BoxError, Cluster, Faults, FaultyTransport, MemNetwork, MemTransport, RaftConfig, StateMachine};
use raft_core::{LogIndex, Membership, Message, MessageBody, NodeId, SnapshotChunk, SnapshotMeta};
use raft_storage::{FileStorage, Options};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// A state of `size` bytes that exists only as a formula (byte `i` of version `v` is
/// fixed by `v` and `i`), so that the test measures what Raft and the storage hold in
/// memory, not the application. Its snapshot is the header and all `size` bytes;
/// restoring reads and checks every one of them before taking the new state.
#[derive(Default)]
struct Synthetic {
    version: u64,
    size: u64,
}

fn fill(buf: &mut [u8], version: u64, pos: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = (pos + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version.rotate_left(17);
        *b = (x >> 56) as u8;
    }
}

impl StateMachine for Synthetic {
    /// The new size; every command makes a new version.
    type Command = u64;
    type Response = u64;
    type Query = ();
    type QueryResponse = (u64, u64);

    fn apply(&mut self, _index: LogIndex, size: u64) -> u64 {
        self.version += 1;
        self.size = size;
        self.version
    }

    fn query(&self, _: ()) -> (u64, u64) {
        (self.version, self.size)
    }

    fn write_snapshot(&self, out: &mut dyn Write) -> Result<(), BoxError> {
        out.write_all(&self.version.to_le_bytes())?;
        out.write_all(&self.size.to_le_bytes())?;
        let mut buf = vec![0u8; 64 << 10];
        let mut pos = 0u64;
        while pos < self.size {
            let n = (buf.len() as u64).min(self.size - pos) as usize;
            fill(&mut buf[..n], self.version, pos);
            out.write_all(&buf[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    fn read_snapshot(&mut self, input: &mut dyn Read) -> Result<(), BoxError> {
        let mut head = [0u8; 16];
        input.read_exact(&mut head)?;
        let version = u64::from_le_bytes(head[..8].try_into()?);
        let size = u64::from_le_bytes(head[8..].try_into()?);
        let (mut got, mut want) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
        let mut pos = 0u64;
        while pos < size {
            let n = (got.len() as u64).min(size - pos) as usize;
            input.read_exact(&mut got[..n])?;
            fill(&mut want[..n], version, pos);
            if got[..n] != want[..n] {
                return Err(format!("byte {pos}.. differs from version {version}").into());
            }
            pos += n as u64;
        }
        if input.read(&mut [0u8; 1])? != 0 {
            return Err("trailing bytes after the state".into());
        }
        (self.version, self.size) = (version, size);
        Ok(())
    }
}

/// This process's resident set and its peak since the last reset, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak resident set to the current one.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

async fn wait_for(what: &str, patience: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_state_snapshots_and_streams_to_a_new_learner_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_owned();
    let net = MemNetwork::new();
    let tnet = net.clone();
    let config = RaftConfig {
        snapshot_interval: 2,
        request_timeout: Duration::from_secs(120),
        ..RaftConfig::fast()
    };
    let mut cluster = Cluster::start(
        ["node1"],
        config,
        move |id| {
            FileStorage::open(root.join(id.as_str()), Options::default())
                .map_err(|e| raft_cluster::Error::Storage(e.into()))
        },
        |_| Synthetic::default(),
        move |id| tnet.transport(id.clone()),
    )
    .await
    .expect("cluster starts");
    let patience = Duration::from_secs(300);
    let leader = cluster.wait_for_leader(patience).await.expect("a leader");

    let (base, _) = rss();
    reset_peak();
    let started = Instant::now();
    assert_eq!(leader.propose(GIB).await.expect("grow to 1 GiB"), 1);
    wait_for("the leader's snapshot", patience, async || {
        leader.metrics().snapshots_taken >= 1
    })
    .await;
    let made_in = started.elapsed();
    let made = rss().1.saturating_sub(base);

    let (base, _) = rss();
    reset_peak();
    let started = Instant::now();
    let learner = cluster.add_node("node2").await.expect("node2 starts");
    leader.add_learner("node2").await.expect("add the learner");
    wait_for("the learner to hold the 1 GiB state", patience, async || {
        learner.read_local(()).await.ok() == Some((1, GIB))
    })
    .await;
    let sent_in = started.elapsed();
    let sent = rss().1.saturating_sub(base);
    eprintln!(
        "1 GiB state: snapshot taken in {made_in:?} with peak RSS +{} MiB; sent to a new learner in {sent_in:?} with peak RSS +{} MiB",
        made / MIB,
        sent / MIB
    );
    assert!(
        made < 100 * MIB,
        "taking the snapshot grew the peak RSS by {} MiB",
        made / MIB
    );
    assert!(
        sent < 100 * MIB,
        "sending the snapshot grew the peak RSS by {} MiB",
        sent / MIB
    );
    assert_eq!(
        learner.metrics().snapshots_installed,
        1,
        "the learner got the state by a snapshot"
    );
    cluster.stop().await;
}

type Faulty = FaultyTransport<MemTransport>;

async fn counter_cluster(faults: &Faults, dir: &std::path::Path) -> Cluster<Counter, FileStorage, Faulty> {
    let root = dir.to_owned();
    let net = MemNetwork::new();
    let faults = faults.clone();
    Cluster::start(
        ["node1", "node2", "node3"],
        RaftConfig {
            snapshot_interval: 20,
            snapshot_chunk_bytes: 4,
            ..RaftConfig::fast()
        },
        move |id| {
            FileStorage::open(root.join(id.as_str()), Options::default())
                .map_err(|e| raft_cluster::Error::Storage(e.into()))
        },
        |_| Counter::default(),
        move |id| FaultyTransport::new(id.clone(), net.transport(id.clone()), faults.clone()),
    )
    .await
    .expect("cluster starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_chunk_damaged_in_transit_is_refused_and_sent_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let faults = Faults::new();
    let mut cluster = counter_cluster(&faults, dir.path()).await;
    let patience = Duration::from_secs(30);
    let leader = cluster.wait_for_leader(patience).await.expect("a leader");
    for _ in 0..60 {
        leader.propose(1).await.expect("propose");
    }
    wait_for("a snapshot on the leader", patience, async || {
        leader.metrics().snapshots_taken >= 1
    })
    .await;

    faults.corrupt_snapshot_chunks(1);
    let learner = cluster.add_node("node4").await.expect("node4 starts");
    leader.add_learner("node4").await.expect("add the learner");
    wait_for("the learner to catch up", patience, async || {
        learner.read_local(()).await.ok() == Some(60)
    })
    .await;
    assert_eq!(faults.corrupted_chunks(), 1, "one chunk was damaged on the way");
    assert!(learner.view().running, "the learner kept running");
    for n in cluster.nodes() {
        assert!(n.view().running, "{} kept running", n.id());
    }
    // It goes on replicating.
    leader.propose(5).await.expect("propose after");
    wait_for("the learner to apply more", patience, async || {
        learner.read_local(()).await.ok() == Some(65)
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_the_state_machine_cannot_read_is_refused_and_the_node_keeps_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let faults = Faults::new();
    let mut cluster = counter_cluster(&faults, dir.path()).await;
    let patience = Duration::from_secs(30);
    let leader = cluster.wait_for_leader(patience).await.expect("a leader");
    for _ in 0..5 {
        leader.propose(1).await.expect("propose");
    }
    let victim = cluster
        .nodes()
        .find(|n| n.id() != leader.id())
        .cloned()
        .expect("a follower");
    wait_for("the follower to apply", patience, async || {
        victim.read_local(()).await.ok() == Some(5)
    })
    .await;
    // From the leader, in its term, far ahead: a snapshot whose checksum is right
    // but whose content is not a Counter's state (a Counter is 8 bytes).
    let view = victim.view();
    let garbage = Bytes::from_static(b"not a counter");
    let chunk = SnapshotChunk {
        meta: SnapshotMeta {
            index: view.commit + 1000,
            term: view.term,
            membership: Membership::with_voters(["node1", "node2", "node3"]),
        },
        offset: 0,
        total: garbage.len() as u64,
        crc: crc32fast::hash(&garbage),
        data: garbage,
        done: true,
    };
    victim
        .inbox()
        .deliver(Message {
            group: 0,
            from: leader.id().clone(),
            to: victim.id().clone(),
            term: view.term,
            body: MessageBody::InstallSnapshot(chunk),
        })
        .expect("delivered");
    // Refused: the state and the log stay, the node keeps following.
    for _ in 0..5 {
        leader.propose(1).await.expect("propose after");
    }
    wait_for("the follower to apply after the bad snapshot", patience, async || {
        victim.read_local(()).await.ok() == Some(10)
    })
    .await;
    assert!(victim.view().running);
    assert_eq!(victim.metrics().snapshots_installed, 0, "nothing was installed");
    assert_eq!(victim.metrics().snapshots_rejected, 1, "the state machine refused it");
    // And it restarts from its own data.
    let id: NodeId = victim.id().clone();
    let victim = cluster.restart(id).await.expect("restarts");
    wait_for("the restarted follower to catch up", patience, async || {
        victim.read_local(()).await.ok() == Some(10)
    })
    .await;
    cluster.stop().await;
}
