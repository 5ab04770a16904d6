//! openraft 0.9 on the load workload, set up like openraft 0.9's own
//! `cluster_benchmark`: the v2 storage API (`storage-v2`) with a log in a `BTreeMap`
//! that reports every append flushed at once, a state machine that only records what
//! it applied, and a network that calls the target `Raft` directly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Config, Entry, EntryPayload, LogId, OptionalSend, Raft, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StoredMembership, Vote,
};
use openraft09 as openraft;

use super::{command, LoadStats, Proposer, COMMAND_BYTES};

/// A proposed command.
#[derive(Clone, Debug)]
pub struct Command(pub [u8; COMMAND_BYTES]);

openraft::declare_raft_types!(
    /// The type configuration of this bench.
    pub Types:
        D = Command,
        R = u64,
        Node = (),
);

type NodeId = u64;
type Bench = Raft<Types>;
type Error = StorageError<NodeId>;

/// The log and the vote, in memory.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<LogState09>>);

#[derive(Default)]
struct LogState09 {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<Types>>,
    purged: Option<LogId<NodeId>>,
}

impl RaftLogReader<Types> for Log {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Types>>, Error> {
        let log = self.0.lock().expect("log lock");
        Ok(log.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<Types> for Log {
    type LogReader = Log;

    async fn get_log_state(&mut self) -> Result<LogState<Types>, Error> {
        let log = self.0.lock().expect("log lock");
        let last = log.entries.values().next_back().map(|e| e.log_id).or(log.purged);
        Ok(LogState {
            last_purged_log_id: log.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Log {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), Error> {
        self.0.lock().expect("log lock").vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, Error> {
        Ok(self.0.lock().expect("log lock").vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), Error> {
        self.0.lock().expect("log lock").committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, Error> {
        Ok(self.0.lock().expect("log lock").committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Types>) -> Result<(), Error>
    where
        I: IntoIterator<Item = Entry<Types>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.0
            .lock()
            .expect("log lock")
            .entries
            .extend(entries.into_iter().map(|e| (e.log_id.index, e)));
        // In memory, so durable as soon as it is stored.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, from: LogId<NodeId>) -> Result<(), Error> {
        self.0.lock().expect("log lock").entries.split_off(&from.index);
        Ok(())
    }

    async fn purge(&mut self, upto: LogId<NodeId>) -> Result<(), Error> {
        let mut log = self.0.lock().expect("log lock");
        log.purged = Some(upto);
        log.entries = log.entries.split_off(&(upto.index + 1));
        Ok(())
    }
}

/// The state machine: the last command and how many were applied.
#[derive(Clone, Default)]
pub struct StateMachine(Arc<Mutex<Applied>>);

#[derive(Default)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ()>,
    count: u64,
    last: [u8; COMMAND_BYTES],
    snapshot: Option<SnapshotMeta<NodeId, ()>>,
}

impl Applied {
    fn snapshot(&self, meta: SnapshotMeta<NodeId, ()>) -> Snapshot<Types> {
        Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(self.count.to_le_bytes().to_vec())),
        }
    }
}

impl RaftSnapshotBuilder<Types> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Types>, Error> {
        let mut sm = self.0.lock().expect("sm lock");
        let meta = SnapshotMeta {
            last_log_id: sm.last_applied,
            last_membership: sm.membership.clone(),
            snapshot_id: format!("{:?}-{}", sm.last_applied, sm.count),
        };
        sm.snapshot = Some(meta.clone());
        Ok(sm.snapshot(meta))
    }
}

impl RaftStateMachine<Types> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, ()>), Error> {
        let sm = self.0.lock().expect("sm lock");
        Ok((sm.last_applied, sm.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, Error>
    where
        I: IntoIterator<Item = Entry<Types>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut sm = self.0.lock().expect("sm lock");
        let mut out = Vec::new();
        for entry in entries {
            sm.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Command(c)) => {
                    sm.last = c;
                    sm.count += 1;
                }
                EntryPayload::Membership(m) => sm.membership = StoredMembership::new(Some(entry.log_id), m),
            }
            out.push(sm.count);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Error> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ()>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Error> {
        let data = snapshot.into_inner();
        let mut sm = self.0.lock().expect("sm lock");
        let count = data.get(..8).and_then(|b| b.try_into().ok()).unwrap_or_default();
        sm.count = u64::from_le_bytes(count);
        sm.last_applied = meta.last_log_id;
        sm.membership = meta.last_membership.clone();
        sm.snapshot = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Types>>, Error> {
        let sm = self.0.lock().expect("sm lock");
        Ok(sm.snapshot.clone().map(|meta| sm.snapshot(meta)))
    }
}

/// Every node of the process by id; a connection is a direct call on the target.
#[derive(Clone, Default)]
struct Router(Arc<Mutex<BTreeMap<NodeId, Bench>>>);

struct Connection {
    id: NodeId,
    target: Bench,
}

impl RaftNetworkFactory<Types> for Router {
    type Network = Connection;

    async fn new_client(&mut self, id: NodeId, _node: &()) -> Connection {
        let target = self.0.lock().expect("router lock")[&id].clone();
        Connection { id, target }
    }
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, (), RaftError<NodeId, E>>>;

impl RaftNetwork<Types> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Types>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let id = self.id;
        self.target
            .append_entries(rpc)
            .await
            .map_err(|e| RemoteError::new(id, e).into())
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Types>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let id = self.id;
        self.target
            .install_snapshot(rpc)
            .await
            .map_err(|e| RemoteError::new(id, e).into())
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        let id = self.id;
        self.target.vote(rpc).await.map_err(|e| RemoteError::new(id, e).into())
    }
}

struct Client {
    leader: Bench,
    command: [u8; COMMAND_BYTES],
}

impl Proposer for Client {
    async fn propose(&mut self) -> bool {
        self.leader
            .client_write(Command(self.command))
            .await
            .expect("leader accepts");
        true
    }
}

/// Runs the workload on a fresh 3-node cluster (node 0 initializes and leads).
pub async fn run(clients: usize, warmup: Duration, window: Duration) -> LoadStats {
    // The same settings as for openraft 0.10 (see `super::openraft10::run`).
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        purge_batch_size: 1024,
        max_payload_entries: 1024,
        ..Config::default()
    };
    let config = Arc::new(config.validate().expect("valid openraft config"));
    let router = Router::default();
    for id in 0..3u64 {
        let raft = Raft::new(
            id,
            config.clone(),
            router.clone(),
            Log::default(),
            StateMachine::default(),
        )
        .await
        .expect("openraft node starts");
        router.0.lock().expect("router lock").insert(id, raft);
    }
    let leader = router.0.lock().expect("router lock")[&0].clone();
    leader
        .initialize(BTreeSet::from([0u64, 1, 2]))
        .await
        .expect("initialize");
    let nodes: Vec<Bench> = router.0.lock().expect("router lock").values().cloned().collect();
    for n in &nodes {
        // Index 1: the new leader's blank entry, so every node knows the leader.
        n.wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(Some(1), "the leader's first entry applied")
            .await
            .expect("cluster is up");
    }
    let stats = super::drive(clients, warmup, window, |i| Client {
        leader: leader.clone(),
        command: command(i),
    })
    .await;
    for n in nodes {
        let _ = n.shutdown().await;
    }
    stats
}
