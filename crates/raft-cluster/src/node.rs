//! `RaftNode`: one tokio task owns one core node and is the only code that touches
//! it. It ticks, steps inbound messages, batches proposals and hands the work of each
//! Ready to the lanes beside it, never waiting for them: the log writer thread
//! ([`crate::log_writer`]) persists, the apply worker thread ([`crate::apply`])
//! applies, answers proposals and reads and takes snapshots, and the transport sends.
//! Their completions come back as messages to the node task.

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use crate::apply::{self, ApplyJob, ApplyReport};
use crate::log_writer::{self, LogWriter, Persisted, SnapshotToInstall, WriteJob};
use bytes::Bytes;
use raft_core::{
    Entry, EntryPayload, LogIndex, Membership, Message, NodeId, RawNode, ReadState, Ready, ReadyDriver, Role, Snapshot,
    SnapshotMeta, Term,
};
use raft_storage::{LogStore, StagedSnapshot};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::config::RaftConfig;
use crate::error::{Error, Result};
use crate::events::{NodeView, RaftEvent};
use crate::handle::{RaftHandle, Request, Shared as HandleShared};
use crate::metrics::Counters;
use crate::shared_storage::SharedStorage;
use crate::state_machine::StateMachine;
use crate::transport::{Inbox, Outbound, SendReport, Transport};

/// Starts Raft nodes. See [`RaftNode::start`].
pub struct RaftNode;

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
        mut storage: S,
        mut state_machine: SM,
        transport: T,
        bootstrap: Option<Membership>,
    ) -> Result<RaftHandle<SM>>
    where
        SM: StateMachine,
        S: LogStore + Send + 'static,
        T: Transport,
    {
        let id = id.into();
        let seed = random_seed(&id);
        let mut core = config.core_config(&id, seed)?;
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
        let (events, _) = broadcast::channel(1024);
        let view = NodeView {
            role: Role::Follower,
            term: raw.term(),
            leader: None,
            commit: raw.commit_index(),
            applied: snap.meta.index,
            running: true,
            disk_stalled: false,
        };
        let (view_tx, view_rx) = watch::channel(view);
        let transport = Arc::new(transport);
        let counters = Arc::new(Counters::default());
        transport.start(inbox.clone()).await.map_err(Error::Transport)?;
        let writer = LogWriter::start(id.as_str(), counters.clone()).map_err(|e| Error::Storage(e.into()))?;
        let (persisted_tx, persisted_rx) = mpsc::unbounded_channel();
        let (applied_tx, applied_rx) = mpsc::unbounded_channel();
        // The apply worker's thread may outlive the node task: it must not keep the
        // storage (and its directory lock) alive.
        let read_storage = storage.downgrade();
        let snapshots: crate::handle::SnapshotOpener = Box::new(move || {
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
        let applier = apply::start(
            id.as_str(),
            state_machine,
            snap.meta.index,
            events.clone(),
            counters.clone(),
            applied_tx,
            sinks,
        )
        .map_err(|e| Error::Internal(format!("cannot start the apply worker: {e}")))?;
        let driver = Driver {
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
        };
        let task = tokio::spawn(driver.run());
        Ok(RaftHandle {
            id,
            requests: req_tx,
            events,
            view: view_rx,
            inbox,
            timeout: config.request_timeout,
            shared: Arc::new(HandleShared {
                task: Mutex::new(Some(task)),
                snapshots,
            }),
            counters,
        })
    }
}

/// A different seed per node and per start, without a global RNG in the core.
fn random_seed(id: &NodeId) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(id)
}

type Reply<R> = oneshot::Sender<Result<R>>;

struct PendingConf {
    index: LogIndex,
    term: Term,
    reply: Reply<()>,
    appended: bool,
}

/// A read waiting for its ReadIndex: the query, the caller, and the tick it was last
/// asked at (`None`: not asked yet, no leader was known).
type PendingRead<SM> = (
    <SM as StateMachine>::Query,
    Reply<<SM as StateMachine>::QueryResponse>,
    Option<u64>,
);

struct Driver<SM: StateMachine, S, T> {
    id: NodeId,
    raw: RawNode<SharedStorage<S>>,
    /// Carries out the Ready contract: numbers the writes, holds the messages that
    /// wait for them, writes a hard state only when its term or vote changed.
    ready: ReadyDriver,
    storage: SharedStorage<S>,
    writer: LogWriter<S>,
    /// The storage writes memory only: write on the node task ([`LogStore::writes_inline`]).
    write_inline: bool,
    /// A log write has been in flight longer than `disk_stall_timeout`.
    disk_stalled: bool,
    persisted_tx: mpsc::UnboundedSender<Persisted>,
    persisted_rx: mpsc::UnboundedReceiver<Persisted>,
    /// Write jobs submitted and not yet reported.
    writes_in_flight: usize,
    applier: std_mpsc::Sender<ApplyJob<SM>>,
    applied_rx: mpsc::UnboundedReceiver<ApplyReport>,
    /// A snapshot was asked of the apply worker and is not yet persisted.
    snapshotting: bool,
    /// A leader's snapshot the state machine accepted, staged, for the storage to
    /// install once the core hands it out.
    accepted: Option<(LogIndex, StagedSnapshot)>,
    outbound: Outbound<T>,
    transport: Arc<T>,
    inbox_rx: mpsc::Receiver<Message>,
    requests: mpsc::Receiver<Request<SM>>,
    reports: mpsc::UnboundedReceiver<SendReport>,
    events: broadcast::Sender<RaftEvent>,
    view: watch::Sender<NodeView>,
    counters: Arc<Counters>,
    /// Proposals by log index, with the term they were appended in.
    proposals: BTreeMap<LogIndex, (Term, Reply<SM::Response>)>,
    conf_changes: Vec<PendingConf>,
    /// Reads waiting for their ReadIndex, by context id, with the tick they were
    /// last asked at (`None`: not asked yet, no leader was known).
    reads: BTreeMap<u64, PendingRead<SM>>,
    next_read: u64,
    /// Ticks since the start.
    ticks: u64,
    /// The leader or term changed: ask the pending reads again.
    reads_stale: bool,
    applied: LogIndex,
    last_snapshot: SnapshotMeta,
    /// Snapshot jobs sent to the apply worker so far (the one in flight is the last).
    snapshot_jobs: u64,
    /// Callers of `snapshot_now`, with the number of jobs sent when each asked.
    snapshot_waiters: Vec<(u64, oneshot::Sender<Result<SnapshotMeta>>)>,
    config: RaftConfig,
    leader: Option<NodeId>,
}

impl<SM, S, T> Driver<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.raw.tick();
                    self.ticks += 1;
                    self.forget_abandoned();
                    self.check_disk();
                    self.retry_reads();
                }
                m = self.inbox_rx.recv() => match m {
                    Some(m) => {
                        self.step(m);
                        while let Ok(m) = self.inbox_rx.try_recv() {
                            self.step(m);
                        }
                    }
                    None => break,
                },
                r = self.requests.recv() => match r {
                    Some(r) => {
                        if !self.handle_requests(r) {
                            break;
                        }
                    }
                    None => break,
                },
                Some(report) = self.reports.recv() => match report {
                    SendReport::Unreachable(to) => self.raw.report_unreachable(&to),
                    SendReport::SnapshotFailed(to) => self.raw.report_snapshot(&to, false),
                },
                Some(p) = self.persisted_rx.recv() => {
                    if let Err(e) = self.drain_persisted(p) {
                        error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                        break;
                    }
                }
                Some(r) = self.applied_rx.recv() => {
                    if let Err(e) = self.drain_applied(r) {
                        error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                        break;
                    }
                }
            }
            if self.reads_stale {
                self.retry_reads();
            }
            if let Err(e) = self.process_ready() {
                error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                break;
            }
        }
        self.stop().await;
    }

    fn step(&mut self, m: Message) {
        if let Err(e) = self.raw.step(m) {
            crate::warn_limited!(id = %self.id, error = %e, "dropping inbound message");
        }
    }

    /// Handles `first` and every request already queued behind it; proposals among
    /// them go to the log as one batch. Returns false on shutdown.
    fn handle_requests(&mut self, first: Request<SM>) -> bool {
        let mut batch: Vec<(Bytes, Reply<SM::Response>)> = Vec::new();
        let mut next = Some(first);
        let mut keep_running = true;
        while let Some(r) = next.take() {
            match r {
                Request::Propose(cmd, reply) => batch.push((cmd, reply)),
                Request::Shutdown => {
                    keep_running = false;
                    break;
                }
                other => self.handle_request(other),
            }
            if batch.len() < self.config.max_batch_size {
                next = self.requests.try_recv().ok();
            }
        }
        self.propose_batch(batch);
        keep_running
    }

    fn propose_batch(&mut self, batch: Vec<(Bytes, Reply<SM::Response>)>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let (cmds, replies): (Vec<Bytes>, Vec<Reply<SM::Response>>) = batch.into_iter().unzip();
        // Kept (cheap clones) in case the batch as a whole is over the uncommitted cap.
        let retry = (n > 1).then(|| cmds.clone());
        match self.raw.propose_batch(cmds) {
            Ok((term, last)) => {
                Counters::add(&self.counters.proposals, n);
                for (i, reply) in replies.into_iter().enumerate() {
                    self.proposals.insert(last + 1 - n + i as u64, (term, reply));
                }
            }
            // Over the uncommitted cap as one batch: take what fits one by one, so the
            // earlier proposals of a large batch are not refused with the later ones.
            Err(raft_core::Error::Backpressure { .. }) if retry.is_some() => {
                for (cmd, reply) in retry.into_iter().flatten().zip(replies) {
                    self.propose_batch(vec![(cmd, reply)]);
                }
            }
            // The same refusal for every proposal of the batch.
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone().into()));
                }
            }
        }
    }

    fn handle_request(&mut self, r: Request<SM>) {
        match r {
            // Without the worker, the reply is dropped: the caller sees `Stopped`.
            Request::ReadLocal(query, reply) => self.send_to_applier(ApplyJob::ReadLocal(query, reply)),
            Request::Read(query, reply) => {
                let id = self.next_read;
                self.next_read += 1;
                match self.raw.read_index(Bytes::copy_from_slice(&id.to_be_bytes())) {
                    Ok(()) => {
                        self.reads.insert(id, (query, reply, Some(self.ticks)));
                    }
                    // No leader known: asked again once one is elected.
                    Err(raft_core::Error::NotLeader { leader_hint: None }) => {
                        self.reads.insert(id, (query, reply, None));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Request::ChangeMembership(changes, reply) => match self.raw.propose_membership_change(&changes) {
                Ok((term, index)) => self.conf_changes.push(PendingConf {
                    index,
                    term,
                    reply,
                    appended: false,
                }),
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Request::TransferLeadership(to, reply) => {
                let _ = reply.send(self.raw.transfer_leader(to).map_err(Error::from));
            }
            Request::Status(reply) => {
                let _ = reply.send(self.raw.status());
            }
            Request::Snapshot(reply) => self.snapshot_now(reply),
            Request::Propose(..) | Request::Shutdown => {}
        }
    }

    /// A log write stuck for longer than `disk_stall_timeout` makes the node report
    /// itself unhealthy. A leader whose own write is stuck for longer than an election
    /// timeout steps down, so that a node with a healthy disk can lead (until then it
    /// commits only through the others and acknowledges nothing: it applies only what
    /// it persisted).
    fn check_disk(&mut self) {
        let age = self.counters.write_in_flight.age().unwrap_or_default();
        let stalled = age > self.config.disk_stall_timeout;
        if stalled != self.disk_stalled {
            self.disk_stalled = stalled;
            if stalled {
                warn!(id = %self.id, seconds = age.as_secs_f64(), "a log write is stalled");
            } else {
                info!(id = %self.id, "the log writes again");
            }
        }
        if self.raw.role() == Role::Leader && age > self.config.election_timeout {
            warn!(id = %self.id, seconds = age.as_secs_f64(), "stepping down: this leader's log write is stalled");
            self.raw.step_down();
        }
    }

    /// Requests whose callers gave up (timed out) are forgotten.
    fn forget_abandoned(&mut self) {
        self.reads.retain(|_, (_, r, _)| !r.is_closed());
    }

    /// Pending reads are asked again after a leader or term change (the old leader
    /// will never answer them) and when an answer is overdue (a lost message).
    fn retry_reads(&mut self) {
        let overdue_after = self.config.election_ticks();
        let now = self.ticks;
        let stale = std::mem::take(&mut self.reads_stale);
        let due: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, (_, _, asked))| match asked {
                None => true,
                Some(t) => stale || now.saturating_sub(*t) >= overdue_after,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let asked = match self.raw.read_index(Bytes::copy_from_slice(&id.to_be_bytes())) {
                Ok(()) => Some(now),
                Err(raft_core::Error::NotLeader { leader_hint: None }) => None,
                Err(e) => {
                    if let Some((_, reply, _)) = self.reads.remove(&id) {
                        let _ = reply.send(Err(e.into()));
                    }
                    continue;
                }
            };
            if let Some(r) = self.reads.get_mut(&id) {
                r.2 = asked;
            }
        }
    }

    /// Hands out every Ready the core has, without waiting for any lane.
    fn process_ready(&mut self) -> Result<()> {
        while self.raw.has_ready() {
            let rd = self.raw.ready();
            self.observe(&rd);
            // Acknowledges the Ready (advance_async); its votes and append
            // acknowledgements wait in the driver for its write, and every write
            // before it (the writer reports in order).
            let work = self.ready.on_ready(&mut self.raw, rd);
            let raft_core::Work {
                messages,
                persist,
                committed_entries,
                read_states,
                snapshot_chunks,
                ..
            } = work;
            let messages = self.stage_chunks(messages, snapshot_chunks);
            self.send(messages);
            if let Some(job) = persist {
                // A leader's snapshot was staged and restored by the apply worker
                // before the core accepted it: the writer installs the staged data.
                let snapshot = match job.snapshot {
                    Some(s) => match self.accepted.take() {
                        Some((index, staged)) if index == s.meta.index => Some(SnapshotToInstall {
                            meta: s.meta,
                            staged: Some(staged),
                        }),
                        _ => {
                            return Err(Error::Internal(format!(
                                "the core installs a snapshot at {} that the state machine did not accept",
                                s.meta.index
                            )))
                        }
                    },
                    None => None,
                };
                self.write(WriteJob {
                    storage: self.storage.clone(),
                    snapshot,
                    entries: job.entries,
                    hard_state: job.hard_state,
                    job: Some(job.id),
                    done: self.persisted_tx.clone(),
                    counters: self.counters.clone(),
                })?;
            }
            if !committed_entries.is_empty() {
                self.hand_to_applier(committed_entries);
            }
            for rs in read_states {
                self.on_read_state(rs);
            }
        }
        // An accepted snapshot the core did not install (it was covered meanwhile).
        self.accepted = None;
        self.publish_view();
        Ok(())
    }

    /// A leader's snapshot is staged and checked by the apply worker, which restores
    /// the state machine from it before the core accepts it. The acknowledgements of
    /// the chunks (answers that are not final) leave once the worker staged them, so
    /// the leader never sends faster than the disk takes them.
    fn stage_chunks(&mut self, messages: Vec<Message>, chunks: Vec<raft_core::SnapshotChunk>) -> Vec<Message> {
        if chunks.is_empty() {
            return messages;
        }
        let (mut acks, now): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|m| matches!(&m.body, raft_core::MessageBody::InstallSnapshotResponse(r) if !r.done));
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let acks = if i == last {
                std::mem::take(&mut acks)
            } else {
                Vec::new()
            };
            self.send_to_applier(ApplyJob::Chunk(chunk, acks));
        }
        now
    }

    fn write(&mut self, job: WriteJob<S>) -> Result<()> {
        self.writes_in_flight += 1;
        if self.write_inline {
            // Memory-only storage: no IO, so no thread handoff either.
            let report = log_writer::write_now(job);
            return self.on_persisted(report);
        }
        if self.writer.submit(job) {
            Ok(())
        } else {
            Err(Error::Internal("the log writer is gone".into()))
        }
    }

    fn send_to_applier(&mut self, job: ApplyJob<SM>) {
        if self.applier.send(job).is_err() {
            error!(id = %self.id, "the apply worker is gone");
        }
    }

    /// `first` and every report already queued behind it.
    fn drain_persisted(&mut self, first: Persisted) -> Result<()> {
        self.on_persisted(first)?;
        while let Ok(p) = self.persisted_rx.try_recv() {
            self.on_persisted(p)?;
        }
        Ok(())
    }

    /// `first` and every report already queued behind it.
    fn drain_applied(&mut self, first: ApplyReport) -> Result<()> {
        self.on_applied(first)?;
        while let Ok(r) = self.applied_rx.try_recv() {
            self.on_applied(r)?;
        }
        Ok(())
    }

    /// A write job is durable: the core may count it, its messages may leave.
    fn on_persisted(&mut self, p: Persisted) -> Result<()> {
        self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
        if let Some(e) = p.error {
            return Err(Error::Storage(e.into()));
        }
        if let Some(meta) = p.snapshot {
            let index = meta.index;
            self.raw.on_snapshot_persisted(index);
            if index > self.last_snapshot.index {
                self.last_snapshot = meta;
            }
            if self.snapshotting {
                self.snapshotting = false;
                Counters::add(&self.counters.snapshots_taken, 1);
                info!(id = %self.id, index, "snapshot taken; log compacted");
                self.answer_snapshot_waiters(Ok(()));
            }
        }
        if let Some(job) = p.job {
            // Tells the core what is durable; the messages that waited leave.
            let released = self
                .ready
                .on_persisted(&mut self.raw, job)
                .map_err(|e| Error::Internal(format!("the log writer's report: {e}")))?;
            self.send(released);
        }
        Ok(())
    }

    fn on_applied(&mut self, r: ApplyReport) -> Result<()> {
        match r {
            ApplyReport::Applied(index) => {
                self.applied = self.applied.max(index);
                self.raw.applied_to(index);
                self.maybe_snapshot();
            }
            ApplyReport::Staged(acks) => self.send(acks),
            ApplyReport::Checked(index, verdict) => {
                let accepted = verdict.is_some();
                self.accepted = verdict.map(|staged| (index, staged));
                self.raw.snapshot_received(index, accepted);
            }
            ApplyReport::Snapshot(index, staged) => {
                // A snapshot installed from the leader meanwhile may be newer; and a
                // state machine that cannot snapshot now is asked again later. Neither
                // stops the node.
                if index <= self.last_snapshot.index {
                    // Nothing applied since the latest snapshot (or a newer one came).
                    self.snapshotting = false;
                    self.answer_snapshot_waiters(Ok(()));
                    return Ok(());
                }
                let snap = match staged.and_then(|staged| {
                    let snap = self.raw.create_snapshot(index, Bytes::new()).map_err(Error::from)?;
                    Ok((snap.meta, staged))
                }) {
                    Ok(snap) => snap,
                    Err(e) => {
                        warn!(id = %self.id, index, error = %e, "no snapshot taken this time");
                        self.snapshotting = false;
                        self.answer_snapshot_waiters(Err(e.to_string()));
                        return Ok(());
                    }
                };
                self.write(WriteJob {
                    storage: self.storage.clone(),
                    snapshot: Some(SnapshotToInstall {
                        meta: snap.0,
                        staged: Some(snap.1),
                    }),
                    entries: Vec::new(),
                    hard_state: None,
                    job: None,
                    done: self.persisted_tx.clone(),
                    counters: self.counters.clone(),
                })?;
            }
        }
        Ok(())
    }

    fn send(&mut self, messages: Vec<Message>) {
        if !messages.is_empty() {
            Counters::add(&self.counters.messages_sent, messages.len() as u64);
            self.outbound.send_all(messages);
        }
    }

    fn observe(&mut self, rd: &Ready) {
        let Some(ss) = &rd.soft_state else { return };
        let _ = self.events.send(RaftEvent::StateChanged {
            role: ss.role,
            term: ss.term,
        });
        if ss.role == Role::Leader && self.leader.as_ref() != Some(&self.id) {
            Counters::add(&self.counters.elections_won, 1);
        }
        if ss.leader != self.leader {
            if let Some(l) = &ss.leader {
                info!(id = %self.id, leader = %l, term = ss.term, "leader elected");
                let _ = self.events.send(RaftEvent::LeaderElected {
                    leader: l.clone(),
                    term: ss.term,
                });
            }
            self.leader = ss.leader.clone();
        }
        self.reads_stale = true;
    }

    /// Committed entries go to the apply worker with the proposals waiting for them;
    /// membership requests resolve here, once their final configuration commits.
    fn hand_to_applier(&mut self, entries: Vec<Entry>) {
        let (Some(first), Some(last)) = (entries.first().map(|e| e.index), entries.last().map(|e| e.index)) else {
            return;
        };
        // Proposals at or before the snapshot the worker holds now were covered by it:
        // they may or may not be in it, so their outcome is unknown.
        let covered: Vec<LogIndex> = self.proposals.range(..first).map(|(i, _)| *i).collect();
        for i in covered {
            if let Some((_, reply)) = self.proposals.remove(&i) {
                let _ = reply.send(Err(Error::Timeout(self.config.request_timeout)));
            }
        }
        let mut waiting = Vec::new();
        let later = self.proposals.split_off(&(last + 1));
        for (index, (term, reply)) in std::mem::replace(&mut self.proposals, later) {
            waiting.push((index, term, reply));
        }
        for e in &entries {
            if !matches!(e.payload, EntryPayload::Command(_)) {
                self.on_conf_applied(e.index, e.term, &e.payload);
            }
        }
        self.send_to_applier(ApplyJob::Entries(entries, waiting));
    }

    /// Membership requests resolve once their final (non-joint) configuration applies.
    fn on_conf_applied(&mut self, index: LogIndex, term: Term, payload: &EntryPayload) {
        let final_config = matches!(payload, EntryPayload::Membership(m) if !m.is_joint());
        let mut i = 0;
        while i < self.conf_changes.len() {
            let c = &mut self.conf_changes[i];
            if c.index == index {
                if c.term != term || !matches!(payload, EntryPayload::Membership(_)) {
                    let c = self.conf_changes.remove(i);
                    let _ = c.reply.send(Err(Error::ProposalDropped));
                    continue;
                }
                c.appended = true;
            }
            if c.appended && final_config && c.index <= index {
                let c = self.conf_changes.remove(i);
                let _ = c.reply.send(Ok(()));
                continue;
            }
            i += 1;
        }
    }

    fn on_read_state(&mut self, rs: ReadState) {
        let Ok(bytes) = <[u8; 8]>::try_from(&rs.context[..]) else {
            debug!(id = %self.id, "read state with a foreign context ignored");
            return;
        };
        if let Some((query, reply, _)) = self.reads.remove(&u64::from_be_bytes(bytes)) {
            self.send_to_applier(ApplyJob::Read(rs.index, query, reply));
        }
    }

    /// Every `snapshot_interval` applied entries: the apply worker snapshots the
    /// state machine, and the log writer saves it and compacts the log behind it.
    fn maybe_snapshot(&mut self) {
        let every = self.config.snapshot_interval;
        if every == 0 || self.snapshotting || self.applied < self.last_snapshot.index.saturating_add(every) {
            return;
        }
        self.start_snapshot();
    }

    /// A snapshot asked for through the handle. It is answered by a snapshot job sent
    /// to the apply worker after it arrived (a job sent before might not hold a write
    /// acknowledged in between), once that snapshot is durable.
    fn snapshot_now(&mut self, reply: oneshot::Sender<Result<SnapshotMeta>>) {
        self.snapshot_waiters.push((self.snapshot_jobs, reply));
        if !self.snapshotting {
            self.start_snapshot();
        }
    }

    fn start_snapshot(&mut self) {
        self.snapshotting = true;
        self.snapshot_jobs = self.snapshot_jobs.saturating_add(1);
        self.send_to_applier(ApplyJob::Snapshot);
    }

    /// The snapshot job in flight ended: durable or covered by a newer snapshot
    /// (`Ok`), or not taken this time. The callers it answers hear; those that came
    /// after it was sent get a job of their own.
    fn answer_snapshot_waiters(&mut self, outcome: std::result::Result<(), String>) {
        let job = self.snapshot_jobs;
        let (answered, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.snapshot_waiters)
            .into_iter()
            .partition(|(after, _)| *after < job);
        for (_, reply) in answered {
            let _ = reply.send(match &outcome {
                Ok(()) => Ok(self.last_snapshot.clone()),
                Err(e) => Err(Error::Internal(format!("no snapshot taken: {e}"))),
            });
        }
        self.snapshot_waiters = later;
        if !self.snapshot_waiters.is_empty() && !self.snapshotting {
            self.start_snapshot();
        }
    }

    fn publish_view(&mut self) {
        let v = NodeView {
            role: self.raw.role(),
            term: self.raw.term(),
            leader: self.raw.leader().cloned(),
            commit: self.raw.commit_index(),
            applied: self.applied,
            running: true,
            disk_stalled: self.disk_stalled,
        };
        self.view.send_if_modified(|old| {
            let changed = *old != v;
            *old = v;
            changed
        });
    }

    async fn stop(mut self) {
        info!(id = %self.id, "node stopping");
        // Let the writes already queued finish (their acknowledgements may still go out).
        while self.writes_in_flight > 0 {
            match tokio::time::timeout(self.config.request_timeout, self.persisted_rx.recv()).await {
                Ok(Some(p)) => {
                    if self.on_persisted(p).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        // Commit-only changes are not written as they happen; write the final commit
        // index now, so a node stopped cleanly recovers its whole state on its own.
        let st = self.raw.status();
        let mut hs = raft_core::HardState {
            term: st.term,
            vote: st.vote,
            commit: st.commit,
        };
        let storage = self.storage.clone();
        let persisted = self.raw.persisted_index();
        let persisted = tokio::task::spawn_blocking(move || {
            let mut store = storage.lock();
            // Never claim a commit beyond what is on disk (a failed persist may have
            // left unstored entries behind).
            hs.commit = hs.commit.min(persisted).min(store.last_index()?);
            store.set_hard_state(&hs)
        })
        .await;
        if !matches!(persisted, Ok(Ok(()))) {
            warn!(id = %self.id, "could not write the final hard state; the commit index will be re-learned");
        }
        for (_, (_, reply)) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for (_, (_, reply, _)) in std::mem::take(&mut self.reads) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for c in std::mem::take(&mut self.conf_changes) {
            let _ = c.reply.send(Err(Error::Stopped));
        }
        self.transport.stop().await;
        self.view.send_modify(|v| v.running = false);
    }
}
