//! [`RaftNode::start`]: recovers or bootstraps the storage, restores the state
//! machine, starts the lanes (log writer, apply worker, transport) and spawns the
//! node task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raft_core::{Membership, NodeId, RawNode, ReadyDriver, Role, Snapshot, SnapshotMeta};
use raft_storage::LogStore;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};

use super::{NodeTask, RaftNode};
use crate::apply;
use crate::config::RaftConfig;
use crate::error::{Error, Result};
use crate::events::NodeView;
use crate::handle::{NodeResources, RaftHandle, SnapshotOpener};
use crate::log_writer::LogWriter;
use crate::metrics::Counters;
use crate::shared_storage::SharedStorage;
use crate::state_machine::StateMachine;
use crate::transport::{Inbox, Outbound, Transport};

impl RaftNode {
    /// Starts a node and returns its handle.
    ///
    /// - `storage` is the node's log (e.g. `raft_storage::FileStorage` or
    ///   `raft_core::MemStorage`); an existing one is recovered: the state machine is
    ///   restored from its latest snapshot and the log after it is applied again.
    /// - `bootstrap`: for a brand-new cluster, the initial voters (every founding node
    ///   passes the same set). `None` for a node that joins an existing cluster (it is
    ///   added by the leader with `add_learner` and learns the rest from the log), and
    ///   ignored when the storage already holds state.
    pub async fn start<SM, S, T>(
        id: impl Into<NodeId>,
        config: RaftConfig,
        storage: S,
        state_machine: SM,
        transport: T,
        bootstrap: Option<Membership>,
    ) -> Result<RaftHandle<SM>>
    where
        SM: StateMachine,
        S: LogStore + Send + 'static,
        T: Transport,
    {
        Self::start_in(
            id.into(),
            config,
            storage,
            state_machine,
            transport,
            bootstrap,
            Lanes::default(),
        )
        .await
    }

    /// [`RaftNode::start`] with the lanes a host may share among its groups.
    pub(crate) async fn start_in<SM, S, T>(
        id: NodeId,
        config: RaftConfig,
        mut storage: S,
        mut state_machine: SM,
        transport: T,
        bootstrap: Option<Membership>,
        lanes: Lanes<S>,
    ) -> Result<RaftHandle<SM>>
    where
        SM: StateMachine,
        S: LogStore + Send + 'static,
        T: Transport,
    {
        let seed = random_seed(&id);
        let mut core = config.core_config(&id, seed)?;
        core.group = lanes.group;
        if config.quiesce && lanes.ticks.is_none() {
            warn!(%id, "quiesce is on for a node outside a RaftHost: if its leader dies while the group is quiesced, nothing wakes it");
        }
        let init = storage.initial_state()?;
        let last = storage.last_index()?;
        let fresh = init.hard_state == Default::default() && last == 0 && init.membership == Membership::default();
        if let (true, Some(members)) = (fresh, bootstrap) {
            info!(%id, voters = ?members.voters, "bootstrapping a new cluster");
            let snap = Snapshot {
                meta: SnapshotMeta {
                    index: 0,
                    term: 0,
                    membership: members,
                },
                data: Bytes::new(),
            };
            storage.save_snapshot(&snap)?;
        }
        // The state machine restarts from the latest snapshot, read as a stream.
        let snap = storage.snapshot_info()?;
        if snap.len > 0 {
            let mut input = storage.snapshot_reader()?;
            state_machine.read_snapshot(&mut input).map_err(Error::StateMachine)?;
        }
        core.applied = snap.meta.index;
        let write_inline = storage.writes_inline();
        let storage = SharedStorage::new(storage)?;
        let mut raw = RawNode::new(core, storage.clone())?;
        raw.set_max_unapplied(config.max_unapplied_entries);

        let (inbox, inbox_rx) = Inbox::new(id.clone(), 8192);
        let (req_tx, req_rx) = mpsc::channel(4096);
        let (report_tx, report_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(lanes.events);
        let view = NodeView {
            role: Role::Follower,
            term: raw.term(),
            leader: None,
            commit: raw.commit_index(),
            applied: snap.meta.index,
            running: true,
            disk_stalled: false,
            quiesced: false,
        };
        let (view_tx, view_rx) = watch::channel(view);
        let transport = Arc::new(transport);
        let writer = match lanes.writer {
            Some(w) => w,
            None => LogWriter::start(id.as_str()).map_err(|e| Error::Storage(e.into()))?,
        };
        let counters = Arc::new(Counters {
            write_in_flight: writer.in_flight(),
            ..Counters::default()
        });
        transport.start(inbox.clone()).await.map_err(Error::Transport)?;

        let (persisted_tx, persisted_rx) = mpsc::unbounded_channel();
        let (applied_tx, applied_rx) = mpsc::unbounded_channel();
        // The apply worker's thread may outlive the node task: it must not keep the
        // storage (and its directory lock) alive.
        let read_storage = storage.downgrade();
        let snapshots: SnapshotOpener = Box::new(move || {
            let store = read_storage.upgrade().ok_or(Error::Stopped)?;
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            let info = store.snapshot_info()?;
            let data = store.snapshot_reader()?;
            Ok((info, data))
        });
        let sink_storage = storage.downgrade();
        let sinks: apply::SinkFactory = Box::new(move || match sink_storage.upgrade() {
            Some(store) => store.lock().unwrap_or_else(|e| e.into_inner()).snapshot_sink(),
            None => Err(raft_core::StorageError::other("the node has stopped")),
        });
        let name = match lanes.pool {
            Some(_) => format!("{id}/{}", lanes.group),
            None => id.to_string(),
        };
        let parts = apply::WorkerParts {
            name,
            sm: state_machine,
            applied: snap.meta.index,
            events: events.clone(),
            counters: counters.clone(),
            reports: applied_tx,
            sinks,
        };
        let applier = apply::start(parts, lanes.pool.as_ref())
            .map_err(|e| Error::Internal(format!("cannot start the apply worker: {e}")))?;
        let task = NodeTask {
            id: id.clone(),
            raw,
            ready: ReadyDriver::new(&init.hard_state),
            storage,
            writer,
            write_inline,
            disk_stalled: false,
            persisted_tx,
            persisted_rx,
            writes_in_flight: 0,
            applier,
            applied_rx,
            snapshotting: false,
            accepted: None,
            outbound: Outbound::new(
                transport.clone(),
                config.outbound_queue,
                config.max_outbound_bytes,
                counters.clone(),
                report_tx,
            ),
            transport,
            inbox_rx,
            requests: req_rx,
            reports: report_rx,
            events: events.clone(),
            view: view_tx,
            counters: counters.clone(),
            proposals: BTreeMap::new(),
            conf_changes: Vec::new(),
            reads: BTreeMap::new(),
            next_read: 0,
            ticks: 0,
            reads_stale: false,
            applied: snap.meta.index,
            last_snapshot: snap.meta.clone(),
            snapshot_jobs: 0,
            snapshot_waiters: Vec::new(),
            config: config.clone(),
            leader: None,
            ticker: lanes.ticks.map(super::Ticker::Shared),
        };
        let task = tokio::spawn(task.run());
        Ok(RaftHandle {
            id,
            group: lanes.group,
            requests: req_tx,
            events,
            view: view_rx,
            inbox,
            timeout: config.request_timeout,
            shared: Arc::new(NodeResources {
                task: Mutex::new(Some(task)),
                snapshots,
            }),
            counters,
        })
    }
}

/// The lanes of a node that a [`crate::RaftHost`] shares among its groups; a node of
/// its own (the default) gets a log writer and an apply thread of its own.
pub(crate) struct Lanes<S> {
    /// The group the node belongs to.
    pub(crate) group: raft_core::GroupId,
    /// A log writer shared with other groups.
    pub(crate) writer: Option<LogWriter<S>>,
    /// An apply pool shared with other groups.
    pub(crate) pool: Option<apply::ApplyPool>,
    /// The host's ticks, shared with other groups.
    pub(crate) ticks: Option<watch::Receiver<u64>>,
    /// Events the node's event stream holds for a subscriber that lags (the buffer is
    /// allocated whole up front: a host of a thousand groups keeps it small).
    pub(crate) events: usize,
}

impl<S> Default for Lanes<S> {
    fn default() -> Self {
        Lanes {
            group: 0,
            writer: None,
            pool: None,
            ticks: None,
            events: 1024,
        }
    }
}

/// A different seed per node and per start, without a global RNG in the core.
fn random_seed(id: &NodeId) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(id)
}
