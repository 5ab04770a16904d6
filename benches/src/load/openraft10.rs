//! openraft 0.10 (alpha) on the load workload, set up the way openraft's own
//! `benchmarks/minimal` does it: a log in a `BTreeMap` that reports every append
//! flushed at once, a state machine that only records what it applied, and a network
//! that calls the target `Raft` directly (no serialization, no sockets).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Cursor};
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::storage::{EntryResponder, IOFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{Config, EntryPayload, OptionalSend, Raft, RaftLogReader, RaftNetworkV2, RaftSnapshotBuilder};
use openraft10 as openraft;

use super::{command, LoadStats, Proposer, COMMAND_BYTES};

/// A proposed command.
#[derive(Clone, Debug)]
pub struct Command(pub [u8; COMMAND_BYTES]);

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:02x?})", &self.0[..4])
    }
}

openraft::declare_raft_types!(
    /// The type configuration of this bench.
    pub Types:
        D = Command,
        R = u64,
        Node = (),
);

type Bench = Raft<Types, StateMachine>;

/// The log and the vote, in memory.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<LogState10>>);

#[derive(Default)]
struct LogState10 {
    vote: Option<VoteOf<Types>>,
    committed: Option<LogIdOf<Types>>,
    entries: BTreeMap<u64, EntryOf<Types>>,
    purged: Option<LogIdOf<Types>>,
}

impl RaftLogReader<Types> for Log {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<Types>>, io::Error> {
        let log = self.0.lock().expect("log lock");
        Ok(log.entries.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<Types>>, io::Error> {
        Ok(self.0.lock().expect("log lock").vote)
    }
}

impl RaftLogStorage<Types> for Log {
    type LogReader = Log;

    async fn get_log_state(&mut self) -> Result<LogState<Types>, io::Error> {
        let log = self.0.lock().expect("log lock");
        let last = log.entries.values().next_back().map(|e| e.log_id()).or(log.purged);
        Ok(LogState {
            last_purged_log_id: log.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Log {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<Types>) -> Result<(), io::Error> {
        self.0.lock().expect("log lock").vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<Types>>) -> Result<(), io::Error> {
        self.0.lock().expect("log lock").committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<Types>>, io::Error> {
        Ok(self.0.lock().expect("log lock").committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Types>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<Types>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.0
            .lock()
            .expect("log lock")
            .entries
            .extend(entries.into_iter().map(|e| (e.index(), e)));
        // In memory, so durable as soon as it is stored.
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<Types>>) -> Result<(), io::Error> {
        let from = last.map_or(0, |l| l.index() + 1);
        self.0.lock().expect("log lock").entries.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, upto: LogIdOf<Types>) -> Result<(), io::Error> {
        let mut log = self.0.lock().expect("log lock");
        log.purged = Some(upto);
        log.entries = log.entries.split_off(&(upto.index() + 1));
        Ok(())
    }
}

/// The state machine: the last command and how many were applied.
#[derive(Clone, Default)]
pub struct StateMachine(Arc<Mutex<Applied>>);

#[derive(Default)]
struct Applied {
    last_applied: Option<LogIdOf<Types>>,
    membership: StoredMembershipOf<Types>,
    count: u64,
    last: [u8; COMMAND_BYTES],
    snapshot: Option<SnapshotMetaOf<Types>>,
}

impl RaftSnapshotBuilder<Types> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<Types, Cursor<Vec<u8>>>, io::Error> {
        let mut sm = self.0.lock().expect("sm lock");
        let meta = SnapshotMetaOf::<Types> {
            last_log_id: sm.last_applied,
            last_membership: sm.membership.clone(),
        };
        sm.snapshot = Some(meta.clone());
        Ok(SnapshotOf::<Types, _> {
            meta,
            snapshot: Cursor::new(sm.count.to_le_bytes().to_vec()),
        })
    }
}

impl RaftStateMachine<Types> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogIdOf<Types>>, StoredMembershipOf<Types>), io::Error> {
        let sm = self.0.lock().expect("sm lock");
        Ok((sm.last_applied, sm.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: Stream<Item = Result<EntryResponder<Types>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let count = {
                let mut sm = self.0.lock().expect("sm lock");
                sm.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(Command(c)) => {
                        sm.last = c;
                        sm.count += 1;
                    }
                    EntryPayload::Membership(m) => {
                        sm.membership = StoredMembershipOf::<Types>::new(Some(entry.log_id), m);
                    }
                }
                sm.count
            };
            if let Some(r) = responder {
                r.send(count);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Types>,
        snapshot: Cursor<Vec<u8>>,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let count = data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(io::ErrorKind::InvalidData)?;
        let mut sm = self.0.lock().expect("sm lock");
        sm.count = u64::from_le_bytes(count);
        sm.last_applied = meta.last_log_id;
        sm.membership = meta.last_membership.clone();
        sm.snapshot = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<Types, Cursor<Vec<u8>>>>, io::Error> {
        let sm = self.0.lock().expect("sm lock");
        Ok(sm.snapshot.clone().map(|meta| SnapshotOf::<Types, _> {
            meta,
            snapshot: Cursor::new(sm.count.to_le_bytes().to_vec()),
        }))
    }
}

/// Every node of the process by id; a connection is a direct call on the target.
#[derive(Clone, Default)]
struct Router(Arc<Mutex<BTreeMap<u64, Bench>>>);

struct Connection {
    target: Bench,
}

fn unreachable(e: impl std::error::Error + 'static) -> RPCError<Types> {
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetworkFactory<Types> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &()) -> Connection {
        let target = self.0.lock().expect("router lock")[&target].clone();
        Connection { target }
    }
}

impl RaftNetworkV2<Types> for Connection {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Types>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Types>, RPCError<Types>> {
        self.target.append_entries(rpc).await.map_err(unreachable)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Types>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Types>, RPCError<Types>> {
        self.target.vote(rpc).await.map_err(unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<Types>,
        snapshot: SnapshotOf<Types, Cursor<Vec<u8>>>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Types>, StreamingError<Types>> {
        self.target
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
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
    // openraft's benchmarks/minimal config, with the easyraft benches' heartbeat and
    // election timeouts.
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
