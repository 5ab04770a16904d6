//! `RaftNode`: one tokio task owns one core node and is the only code that touches
//! it. It ticks, steps inbound messages, batches proposals, carries out each Ready
//! (persisting off the executor), applies committed entries and answers requests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raft_core::{
    Entry, EntryPayload, LogIndex, Membership, Message, NodeId, RawNode, ReadState, Ready, Role, Snapshot,
    SnapshotMeta, Term,
};
use raft_storage::LogStore;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::config::RaftConfig;
use crate::error::{BoxError, Error, Result};
use crate::events::{NodeView, RaftEvent};
use crate::handle::{RaftHandle, Request, Shared as HandleShared};
use crate::metrics::{Counters, MetricsSource};
use crate::shared_storage::Shared;
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
        let init = storage.initial_state().map_err(|e| Error::Storage(e.into()))?;
        let last = storage.last_index().map_err(|e| Error::Storage(e.into()))?;
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
            storage.save_snapshot(&snap).map_err(|e| Error::Storage(e.into()))?;
        }
        let snap = storage.snapshot().map_err(|e| Error::Storage(e.into()))?;
        if !snap.data.is_empty() {
            state_machine.restore(&snap.data).map_err(Error::StateMachine)?;
        }
        core.applied = snap.meta.index;
        let storage = Shared::new(storage);
        let raw = RawNode::new(core, storage.clone())?;

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
        };
        let (view_tx, view_rx) = watch::channel(view);
        let transport = Arc::new(transport);
        transport.observe(view_rx.clone());
        let counters = Arc::new(Counters::default());
        transport.observe_metrics(MetricsSource(counters.clone()));
        transport.start(inbox.clone()).await.map_err(Error::Transport)?;
        let driver = Driver {
            id: id.clone(),
            raw,
            storage,
            sm: state_machine,
            outbound: Outbound::new(transport.clone(), config.outbound_queue, report_tx),
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
            waiting_reads: VecDeque::new(),
            next_read: 0,
            applied: snap.meta.index,
            last_snapshot: snap.meta.index,
            config: config.clone(),
            leader: None,
            durable_vote: (init.hard_state.term, init.hard_state.vote.clone()),
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

struct Driver<SM: StateMachine, S, T> {
    id: NodeId,
    raw: RawNode<Shared<S>>,
    storage: Shared<S>,
    sm: SM,
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
    /// Reads waiting for their ReadIndex, by context id.
    reads: BTreeMap<u64, (SM::Query, Reply<SM::QueryResponse>)>,
    /// Reads whose index is known, waiting to be applied.
    waiting_reads: VecDeque<(LogIndex, SM::Query, Reply<SM::QueryResponse>)>,
    next_read: u64,
    applied: LogIndex,
    last_snapshot: LogIndex,
    config: RaftConfig,
    leader: Option<NodeId>,
    /// The term and vote last written to storage.
    durable_vote: (Term, Option<NodeId>),
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
                    self.forget_abandoned();
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
            }
            if let Err(e) = self.process_ready().await {
                error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                break;
            }
        }
        self.stop().await;
    }

    fn step(&mut self, m: Message) {
        if let Err(e) = self.raw.step(m) {
            warn!(id = %self.id, error = %e, "dropping inbound message");
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
        match self.raw.propose_batch(cmds) {
            Ok((term, last)) => {
                Counters::add(&self.counters.proposals, n);
                for (i, reply) in replies.into_iter().enumerate() {
                    self.proposals.insert(last + 1 - n + i as u64, (term, reply));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(same_error(&e)));
                }
            }
        }
    }

    fn handle_request(&mut self, r: Request<SM>) {
        match r {
            Request::ReadLocal(query, reply) => {
                let _ = reply.send(Ok(self.sm.query(query)));
            }
            Request::Read(query, reply) => {
                let id = self.next_read;
                self.next_read += 1;
                match self.raw.read_index(Bytes::copy_from_slice(&id.to_be_bytes())) {
                    Ok(()) => {
                        self.reads.insert(id, (query, reply));
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
            Request::Propose(..) | Request::Shutdown => {}
        }
    }

    /// Requests whose callers gave up (timed out) are forgotten.
    fn forget_abandoned(&mut self) {
        self.reads.retain(|_, (_, r)| !r.is_closed());
        self.waiting_reads.retain(|(_, _, r)| !r.is_closed());
    }

    async fn process_ready(&mut self) -> Result<()> {
        while self.raw.has_ready() {
            let rd = self.raw.ready();
            self.observe(&rd);
            let Ready {
                hard_state,
                entries,
                snapshot,
                messages,
                persisted_messages,
                committed_entries,
                read_states,
                ..
            } = rd;
            self.send(messages);
            // Only term and vote must be durable before messages leave; the commit
            // index is re-learned from the leader after a restart. Skipping commit-only
            // changes saves a synchronous hard-state write on almost every Ready.
            let hard_state = hard_state.filter(|hs| (hs.term, &hs.vote) != (self.durable_vote.0, &self.durable_vote.1));
            if let Some(hs) = &hard_state {
                self.durable_vote = (hs.term, hs.vote.clone());
            }
            if snapshot.is_some() || !entries.is_empty() || hard_state.is_some() {
                let n = entries.len() as u64;
                let storage = self.storage.clone();
                let snap = snapshot.clone();
                let started = std::time::Instant::now();
                tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
                    let mut st = storage.lock();
                    if let Some(s) = &snap {
                        st.save_snapshot(s)?;
                    }
                    if !entries.is_empty() {
                        st.append(&entries)?;
                    }
                    if let Some(hs) = &hard_state {
                        st.set_hard_state(hs)?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| Error::Storage(Box::new(e)))?
                .map_err(Error::Storage)?;
                self.counters.persist_latency.record(started.elapsed());
                Counters::add(&self.counters.persists, 1);
                Counters::add(&self.counters.entries_persisted, n);
            }
            self.send(persisted_messages);
            if let Some(s) = snapshot {
                self.install(s)?;
            }
            for e in committed_entries {
                self.apply(e);
            }
            for rs in read_states {
                self.on_read_state(rs);
            }
            self.raw.advance();
            self.serve_reads();
            self.maybe_snapshot().await?;
        }
        self.publish_view();
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
    }

    fn install(&mut self, s: Snapshot) -> Result<()> {
        info!(id = %self.id, index = s.meta.index, "restoring the state machine from a snapshot");
        self.sm.restore(&s.data).map_err(Error::StateMachine)?;
        self.applied = s.meta.index;
        self.last_snapshot = s.meta.index;
        // Proposals covered by the snapshot may or may not be in it: unknown outcome.
        let covered: Vec<LogIndex> = self.proposals.range(..=s.meta.index).map(|(i, _)| *i).collect();
        for i in covered {
            if let Some((_, reply)) = self.proposals.remove(&i) {
                let _ = reply.send(Err(Error::Timeout(self.config.request_timeout)));
            }
        }
        let _ = self.events.send(RaftEvent::SnapshotInstalled { index: s.meta.index });
        Ok(())
    }

    fn apply(&mut self, e: Entry) {
        self.applied = e.index;
        Counters::add(&self.counters.applied, 1);
        let pending = self.proposals.remove(&e.index);
        match e.payload {
            EntryPayload::Command(bytes) => {
                let outcome = match postcard::from_bytes::<SM::Command>(&bytes) {
                    Ok(cmd) => Ok(self.sm.apply(e.index, cmd)),
                    Err(err) => {
                        error!(id = %self.id, index = e.index, error = %err, "undecodable command skipped");
                        Err(Error::Encoding(err.to_string()))
                    }
                };
                if let Some((term, reply)) = pending {
                    let _ = reply.send(if term == e.term {
                        outcome
                    } else {
                        Err(Error::ProposalDropped)
                    });
                }
            }
            other => {
                if let Some((_, reply)) = pending {
                    let _ = reply.send(Err(Error::ProposalDropped));
                }
                self.on_conf_applied(e.index, e.term, &other);
            }
        }
        let _ = self.events.send(RaftEvent::EntryApplied {
            index: e.index,
            term: e.term,
        });
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
        if let Some((query, reply)) = self.reads.remove(&u64::from_be_bytes(bytes)) {
            self.waiting_reads.push_back((rs.index, query, reply));
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let mut still = VecDeque::new();
        while let Some((index, query, reply)) = self.waiting_reads.pop_front() {
            if index <= applied {
                let _ = reply.send(Ok(self.sm.query(query)));
            } else {
                still.push_back((index, query, reply));
            }
        }
        self.waiting_reads = still;
    }

    /// Every `snapshot_interval` applied entries: snapshot the state machine and
    /// compact the log behind it.
    async fn maybe_snapshot(&mut self) -> Result<()> {
        let every = self.config.snapshot_interval;
        if every == 0 || self.applied < self.last_snapshot + every {
            return Ok(());
        }
        let data = self.sm.snapshot().map_err(Error::StateMachine)?;
        let snap = self.raw.create_snapshot(self.applied, data)?;
        let index = snap.meta.index;
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || {
            storage
                .lock()
                .save_snapshot(&snap)
                .map_err(|e| -> BoxError { e.into() })
        })
        .await
        .map_err(|e| Error::Storage(Box::new(e)))?
        .map_err(Error::Storage)?;
        self.last_snapshot = index;
        Counters::add(&self.counters.snapshots_taken, 1);
        info!(id = %self.id, index, "snapshot taken; log compacted");
        Ok(())
    }

    fn publish_view(&mut self) {
        let v = NodeView {
            role: self.raw.role(),
            term: self.raw.term(),
            leader: self.raw.leader().cloned(),
            commit: self.raw.commit_index(),
            applied: self.applied,
            running: true,
        };
        self.view.send_if_modified(|old| {
            let changed = *old != v;
            *old = v;
            changed
        });
    }

    async fn stop(mut self) {
        info!(id = %self.id, "node stopping");
        // Commit-only changes are not written as they happen; write the final commit
        // index now, so a node stopped cleanly recovers its whole state on its own.
        let st = self.raw.status();
        let mut hs = raft_core::HardState {
            term: st.term,
            vote: st.vote,
            commit: st.commit,
        };
        let storage = self.storage.clone();
        let persisted = tokio::task::spawn_blocking(move || {
            let mut store = storage.lock();
            // Never claim a commit beyond what is on disk (a failed persist may have
            // left unstored entries behind).
            hs.commit = hs.commit.min(store.last_index()?);
            store.set_hard_state(&hs)
        })
        .await;
        if !matches!(persisted, Ok(Ok(()))) {
            warn!(id = %self.id, "could not write the final hard state; the commit index will be re-learned");
        }
        for (_, (_, reply)) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.reads) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for (_, _, reply) in std::mem::take(&mut self.waiting_reads) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for c in std::mem::take(&mut self.conf_changes) {
            let _ = c.reply.send(Err(Error::Stopped));
        }
        self.transport.stop().await;
        self.view.send_modify(|v| v.running = false);
    }
}

/// The same error again, for every proposal of a refused batch.
fn same_error(e: &raft_core::Error) -> Error {
    match e {
        raft_core::Error::NotLeader { leader_hint } => Error::NotLeader {
            leader_hint: leader_hint.clone(),
        },
        raft_core::Error::LeadershipTransferInProgress { to } => Error::TransferInProgress(to.clone()),
        other => Error::Internal(other.to_string()),
    }
}
