//! `RaftHandle`: the cloneable handle users hold to talk to a running node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raft_core::{GroupId, MembershipChange, NodeId, SnapshotInfo, SnapshotMeta, Status};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::events::{NodeView, RaftEvent};
use crate::state_machine::StateMachine;
use crate::transport::Inbox;

/// A request from a handle to the node task.
pub(crate) enum Request<SM: StateMachine> {
    Propose(Bytes, oneshot::Sender<Result<SM::Response>>),
    Read(SM::Query, oneshot::Sender<Result<SM::QueryResponse>>),
    ReadLocal(SM::Query, oneshot::Sender<Result<SM::QueryResponse>>),
    ChangeMembership(Vec<MembershipChange>, oneshot::Sender<Result<()>>),
    TransferLeadership(NodeId, oneshot::Sender<Result<()>>),
    Status(oneshot::Sender<Status>),
    Snapshot(oneshot::Sender<Result<SnapshotMeta>>),
    /// Wake a quiesced node ([`raft_core::RawNode::wake`]).
    Wake,
    Shutdown,
}

/// Opens the node's latest snapshot (its description and a stream of its data),
/// reading the storage from the caller's thread, never the node task's.
pub(crate) type SnapshotOpener = Box<dyn Fn() -> Result<(SnapshotInfo, Box<dyn std::io::Read + Send>)> + Send + Sync>;

/// What every clone of one node's handle shares: the node task, and the way to open
/// its latest snapshot.
pub(crate) struct NodeResources {
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) snapshots: SnapshotOpener,
}

/// A handle to a running [`crate::RaftNode`]. Cheap to clone; every clone talks to the
/// same node.
pub struct RaftHandle<SM: StateMachine> {
    pub(crate) id: NodeId,
    pub(crate) group: GroupId,
    pub(crate) requests: mpsc::Sender<Request<SM>>,
    pub(crate) events: broadcast::Sender<RaftEvent>,
    pub(crate) view: watch::Receiver<NodeView>,
    pub(crate) inbox: Inbox,
    pub(crate) timeout: Duration,
    pub(crate) shared: Arc<NodeResources>,
    pub(crate) counters: Arc<crate::metrics::Counters>,
}

impl<SM: StateMachine> Clone for RaftHandle<SM> {
    fn clone(&self) -> Self {
        RaftHandle {
            id: self.id.clone(),
            group: self.group,
            requests: self.requests.clone(),
            events: self.events.clone(),
            view: self.view.clone(),
            inbox: self.inbox.clone(),
            timeout: self.timeout,
            shared: self.shared.clone(),
            counters: self.counters.clone(),
        }
    }
}

impl<SM: StateMachine> RaftHandle<SM> {
    /// The node's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The Raft group the node belongs to (0 for a node started on its own with
    /// [`crate::RaftNode::start`]; the id it was created with on a [`crate::RaftHost`]).
    pub fn group(&self) -> GroupId {
        self.group
    }

    async fn call<R>(&self, make: impl FnOnce(oneshot::Sender<Result<R>>) -> Request<SM>) -> Result<R> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    /// Proposes a command; resolves with the state machine's response once the
    /// command is committed and applied on this node (the leader).
    ///
    /// Errors: [`Error::NotLeader`] with a hint on a follower; [`Error::Timeout`] when
    /// the outcome is unknown (the command may still commit: make commands
    /// idempotent or carry a request id if you retry).
    pub async fn propose(&self, command: SM::Command) -> Result<SM::Response> {
        let bytes = postcard::to_allocvec(&command).map_err(|e| Error::Encoding(e.to_string()))?;
        let started = std::time::Instant::now();
        let response = self.call(|tx| Request::Propose(Bytes::from(bytes), tx)).await?;
        self.counters.propose_latency.record(started.elapsed());
        Ok(response)
    }

    /// A linearizable read: confirms leadership with a quorum (ReadIndex), waits until
    /// this node has applied everything committed before the read began, then runs
    /// `query` on its state machine. Works on followers too (the leader only confirms
    /// the index).
    pub async fn read(&self, query: SM::Query) -> Result<SM::QueryResponse> {
        let started = std::time::Instant::now();
        let answer = self.call(|tx| Request::Read(query, tx)).await.map_err(|e| match e {
            // A read has no outcome to be unsure of.
            Error::Timeout(d) => Error::ReadTimeout(d),
            e => e,
        })?;
        self.counters.read_latency.record(started.elapsed());
        Ok(answer)
    }

    /// A *serializable*, possibly stale read: runs `query` on this node's state
    /// machine as it is now, without asking anyone. Cheap and available on any node
    /// (even cut off from the others), but not linearizable: a follower may be behind,
    /// and a deposed leader may not know it yet. Like etcd's serializable reads; use
    /// [`read`](Self::read) whenever the answer must reflect every acknowledged write.
    pub async fn read_local(&self, query: SM::Query) -> Result<SM::QueryResponse> {
        self.call(|tx| Request::ReadLocal(query, tx)).await
    }

    /// Adds a learner (it receives the log but does not vote).
    pub async fn add_learner(&self, id: impl Into<NodeId>) -> Result<()> {
        self.change_membership(vec![MembershipChange::AddLearner(id.into())])
            .await
    }

    /// Changes the membership (joint consensus for voter changes); resolves once the
    /// final configuration is committed.
    pub async fn change_membership(&self, changes: Vec<MembershipChange>) -> Result<()> {
        self.call(|tx| Request::ChangeMembership(changes, tx)).await
    }

    /// Asks the leader to hand leadership to `to`; resolves when the transfer started.
    pub async fn transfer_leadership(&self, to: impl Into<NodeId>) -> Result<()> {
        let to = to.into();
        self.call(|tx| Request::TransferLeadership(to, tx)).await
    }

    /// Takes a snapshot of the state machine now and compacts the log behind it;
    /// resolves with what the snapshot covers once it is durable. With nothing applied
    /// since the latest snapshot, that one is the answer. Taken on the leader, it holds
    /// every write acknowledged before the call (a leader applies a write before it
    /// acknowledges it).
    ///
    /// # Errors
    /// [`Error::Stopped`]; [`Error::Internal`] if the state machine or the storage
    /// could not make the snapshot this time (the node keeps running).
    pub async fn snapshot_now(&self) -> Result<SnapshotMeta> {
        // No request timeout: a large state machine takes as long as it takes.
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Snapshot(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// The node's latest snapshot: what it covers, its length and CRC-32, and a stream
    /// of its data (which checks the CRC at its end). The storage is read on a
    /// blocking thread, not on the node task; a snapshot installed meanwhile does not
    /// change a stream already opened. With [`snapshot_now`](Self::snapshot_now) first,
    /// this is a backup.
    ///
    /// # Errors
    /// [`Error::Stopped`] once the node stopped; [`Error::Storage`] if the storage
    /// cannot open it.
    pub async fn open_snapshot(&self) -> Result<(SnapshotInfo, Box<dyn std::io::Read + Send>)> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || (shared.snapshots)())
            .await
            .map_err(|e| Error::Internal(format!("opening the snapshot: {e}")))?
    }

    /// The node's full status: role, term, leader, commit, applied, log bounds,
    /// membership and, on the leader, each peer's progress.
    pub async fn status(&self) -> Result<Status> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Status(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// The latest cheap view (role, term, leader, applied) without asking the task.
    pub fn view(&self) -> NodeView {
        let mut view = self.view.borrow().clone();
        // A task that ended without its orderly stop (killed, or panicked) dropped the
        // sender with `running` still true, and possibly `role: Leader`: a dead node
        // must not look alive (`Cluster::leader` would pick it).
        if self.view.has_changed().is_err() {
            view.running = false;
        }
        view
    }

    /// A stream of the node's events. A receiver that falls more than 1,024 events
    /// behind (64 for a group of a [`crate::RaftHost`]) gets `RecvError::Lagged` and
    /// continues from the newest.
    pub fn events(&self) -> broadcast::Receiver<RaftEvent> {
        self.events.subscribe()
    }

    /// A watch of the node's view, updated after every change.
    pub fn watch(&self) -> watch::Receiver<NodeView> {
        self.view.clone()
    }

    /// The node's counters (proposals, applied entries, fsyncs, elections...) and
    /// latency histograms (propose, read, persist); [`Metrics::to_prometheus`](crate::Metrics::to_prometheus)
    /// renders them for a Prometheus scrape.
    pub fn metrics(&self) -> crate::metrics::Metrics {
        crate::metrics::Metrics {
            group: self.group,
            ..self.counters.snapshot()
        }
    }

    /// Where a transport server delivers inbound messages for this node.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Wakes the node if it is quiesced, without waiting (the host does, when a peer
    /// falls silent); a node busy enough to have a full request queue is not quiesced.
    pub(crate) fn wake(&self) {
        let _ = self.requests.try_send(Request::Wake);
    }

    /// Stops the node gracefully and waits until it has stopped. Pending requests
    /// fail with [`Error::Stopped`].
    pub async fn shutdown(&self) {
        let _ = self.requests.send(Request::Shutdown).await;
        let task = self.shared.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Kills the node abruptly, as a crash would: the task is dropped where it stands,
    /// nothing is flushed. For tests.
    pub async fn kill(&self) {
        let task = self.shared.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}
