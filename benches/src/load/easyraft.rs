//! easyraft on the load workload: [`Cluster`] of 3 nodes on [`MemNetwork`], with
//! `MemStorage` or `FileStorage` (fsync on, counted by [`CountingVfs`]), the cluster
//! benches' timing ([`crate::cluster_config`]) and [`crate::propose_on_leader`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft_cluster::{BoxError, Cluster, MemNetwork, MemTransport, RaftHandle, StateMachine};
use raft_core::{LogIndex, MemStorage, NodeId};
use raft_storage::{FileStorage, LogStore, Options};

use super::{command, LoadStats, Proposer, COMMAND_BYTES};
use crate::CountingVfs;

/// The state machine: keeps the last command and counts them (the response).
#[derive(Debug, Default)]
pub struct LastCommand {
    count: u64,
    last: [u8; COMMAND_BYTES],
}

impl StateMachine for LastCommand {
    type Command = [u8; COMMAND_BYTES];
    type Response = u64;
    type Query = ();
    type QueryResponse = u64;

    fn apply(&mut self, _index: LogIndex, command: Self::Command) -> u64 {
        self.last = command;
        self.count += 1;
        self.count
    }

    fn query(&self, _: ()) -> u64 {
        self.count
    }

    fn snapshot(&self) -> Result<Bytes, BoxError> {
        let mut b = self.count.to_le_bytes().to_vec();
        b.extend_from_slice(&self.last);
        Ok(b.into())
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        let (count, last) = data.split_at_checked(8).ok_or("short snapshot")?;
        self.count = u64::from_le_bytes(count.try_into()?);
        self.last = last.try_into()?;
        Ok(())
    }
}

type Node = RaftHandle<LastCommand>;

struct Client {
    nodes: Arc<[Node]>,
    leader: usize,
    command: [u8; COMMAND_BYTES],
}

impl Proposer for Client {
    async fn propose(&mut self) -> bool {
        crate::propose_on_leader(&self.nodes, &mut self.leader, self.command).await;
        true
    }
}

/// Per-entry IO counts from one run, per role.
#[derive(Clone, Debug, Default)]
pub struct IoPerEntry {
    /// Ready persists (appends and/or hard states) per applied entry, on the leader.
    pub persists_leader: f64,
    /// The same, averaged over the followers.
    pub persists_follower: f64,
    /// Real `fdatasync` + directory fsync calls per applied entry (FileStorage only).
    pub fsyncs_leader: Option<f64>,
    /// The same, averaged over the followers.
    pub fsyncs_follower: Option<f64>,
}

/// Runs the workload on a fresh cluster; `file` selects `FileStorage` (fsync on).
pub async fn run(file: bool, clients: usize, warmup: Duration, window: Duration) -> (LoadStats, IoPerEntry) {
    let ids = ["node1", "node2", "node3"];
    let syncs: BTreeMap<NodeId, Arc<AtomicU64>> = ids.map(|id| (NodeId::new(id), Arc::default())).into();
    let dir = crate::bench_dir();
    if file {
        let root = dir.path().to_owned();
        let counters = syncs.clone();
        run_on(clients, warmup, window, &syncs, move |id| {
            let vfs = CountingVfs::new(counters.get(id).cloned().unwrap_or_default());
            FileStorage::open_with_vfs(Arc::new(vfs), root.join(id.as_str()), Options::default())
                .map_err(|e| raft_cluster::Error::Storage(Box::new(e)))
        })
        .await
    } else {
        run_on(clients, warmup, window, &BTreeMap::new(), |_| Ok(MemStorage::default())).await
    }
}

async fn run_on<S: LogStore + Send + 'static>(
    clients: usize,
    warmup: Duration,
    window: Duration,
    syncs: &BTreeMap<NodeId, Arc<AtomicU64>>,
    make_storage: impl Fn(&NodeId) -> raft_cluster::Result<S> + Send + Sync + 'static,
) -> (LoadStats, IoPerEntry) {
    let net = MemNetwork::new();
    let mut cluster = Cluster::start(
        ["node1", "node2", "node3"],
        crate::cluster_config(),
        make_storage,
        |_| LastCommand::default(),
        move |id| -> MemTransport { net.transport(id.clone()) },
    )
    .await
    .expect("cluster starts");
    let leader = cluster
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("a leader");
    let nodes: Arc<[Node]> = cluster.nodes().cloned().collect();
    let at = nodes
        .iter()
        .position(|n| n.id() == leader.id())
        .expect("leader is a node");
    let stats = super::drive(clients, warmup, window, |i| Client {
        nodes: nodes.clone(),
        leader: at,
        command: command(i),
    })
    .await;
    let mut io = IoPerEntry::default();
    let followers = (nodes.len() - 1).max(1) as f64;
    for n in nodes.iter() {
        let m = n.metrics();
        let applied = m.applied.max(1) as f64;
        let persists = m.persists as f64 / applied;
        let fsyncs = syncs.get(n.id()).map(|s| s.load(Ordering::Relaxed) as f64 / applied);
        if n.id() == leader.id() {
            io.persists_leader = persists;
            io.fsyncs_leader = fsyncs;
        } else {
            io.persists_follower += persists / followers;
            if let Some(f) = fsyncs {
                *io.fsyncs_follower.get_or_insert(0.0) += f / followers;
            }
        }
    }
    cluster.stop().await;
    (stats, io)
}
