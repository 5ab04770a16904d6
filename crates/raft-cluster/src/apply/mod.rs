//! The apply worker: a thread that owns the state machine, applies committed entries
//! in log order, answers proposals and reads, and takes and restores snapshots, so a
//! slow state machine never holds up the node task (ticks, heartbeats, votes).
//!
//! The node task feeds it through an unbounded queue whose depth the core bounds
//! ([`raft_core::RawNode::set_max_unapplied`]); it reports what it applied back.
//! A node of its own has a worker thread of its own; the groups of a
//! [`crate::RaftHost`] share a fixed pool of threads ([`pool`]), so that a thousand
//! idle groups are not a thousand idle threads.

use std::collections::VecDeque;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use raft_core::{Entry, EntryPayload, LogIndex, SnapshotChunk, StorageError, Term};
use raft_storage::{SnapshotSink, StagedSnapshot};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{error, info, warn};

use crate::error::{Error, Result};
use crate::events::RaftEvent;
use crate::metrics::Counters;
use crate::state_machine::StateMachine;

pub(crate) mod pool;

pub(crate) use pool::ApplyPool;

type Reply<R> = oneshot::Sender<Result<R>>;

/// Work for the apply worker, done in the order sent.
pub(crate) enum ApplyJob<SM: StateMachine> {
    /// Committed entries, with the proposals waiting for some of them
    /// (index, term proposed in, reply).
    Entries(Vec<Entry>, Vec<(LogIndex, Term, Reply<SM::Response>)>),
    /// A chunk of a leader's snapshot, in order: staged (offset 0 starts over); once
    /// the last one is in, the state machine checks and restores the snapshot. The
    /// messages (the chunk's acknowledgement) go back once it is staged, so that the
    /// leader sends the next chunk only then: at most one chunk is in memory.
    Chunk(SnapshotChunk, Vec<raft_core::Message>),
    /// Answer once everything up to `index` is applied.
    Read(LogIndex, SM::Query, Reply<SM::QueryResponse>),
    /// Answer from the current state, possibly stale.
    ReadLocal(SM::Query, Reply<SM::QueryResponse>),
    /// Snapshot the state as of the last applied entry.
    Snapshot,
}

/// What the worker tells the node task.
#[derive(Debug)]
pub(crate) enum ApplyReport {
    /// Everything up to this index is applied.
    Applied(LogIndex),
    /// A snapshot of the state at `index`, staged for the storage to install.
    Snapshot(LogIndex, Result<StagedSnapshot>),
    /// A leader's snapshot at `index` was staged and offered to the state machine:
    /// accepted (restored, or already covered by what was applied) with the staged
    /// data to install, or rejected.
    Checked(LogIndex, Option<StagedSnapshot>),
    /// Chunks were staged: their acknowledgements may leave.
    Staged(Vec<raft_core::Message>),
}

/// Makes a sink for snapshot data (the storage's [`raft_storage::LogStore::snapshot_sink`]).
pub(crate) type SinkFactory = Box<dyn Fn() -> std::result::Result<SnapshotSink, StorageError> + Send>;

/// Where the node task sends its apply jobs: a worker thread of the node's own, or a
/// worker run by a pool shared by many groups.
pub(crate) enum Applier<SM: StateMachine> {
    /// The node's own thread, which ends when this sender is dropped.
    Thread(std_mpsc::Sender<ApplyJob<SM>>),
    /// A worker on a shared pool, dropped with the last job it ran after this is.
    Pooled(Arc<pool::PooledWorker<SM>>),
}

impl<SM: StateMachine> Applier<SM> {
    /// Queues a job; false if the worker is gone.
    pub(crate) fn send(&self, job: ApplyJob<SM>) -> bool {
        match self {
            Applier::Thread(tx) => tx.send(job).is_ok(),
            Applier::Pooled(worker) => worker.push(job),
        }
    }
}

/// What a worker is started with.
pub(crate) struct WorkerParts<SM: StateMachine> {
    pub(crate) name: String,
    pub(crate) sm: SM,
    pub(crate) applied: LogIndex,
    pub(crate) events: broadcast::Sender<RaftEvent>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) reports: mpsc::UnboundedSender<ApplyReport>,
    pub(crate) sinks: SinkFactory,
}

/// Starts a worker: on a thread of its own, or on `pool`.
pub(crate) fn start<SM: StateMachine>(
    parts: WorkerParts<SM>,
    pool: Option<&ApplyPool>,
) -> std::io::Result<Applier<SM>> {
    let name = parts.name.clone();
    let mut worker = Worker::new(parts);
    if let Some(pool) = pool {
        return Ok(Applier::Pooled(pool::PooledWorker::new(worker, pool)));
    }
    let (tx, rx) = std_mpsc::channel();
    std::thread::Builder::new()
        .name(format!("raft-apply-{name}"))
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                worker.handle(job);
                // Whatever queued meanwhile, then the reads it made servable, then
                // one report for all of it.
                while let Ok(job) = rx.try_recv() {
                    worker.handle(job);
                }
                worker.finish_round();
            }
        })?;
    Ok(Applier::Thread(tx))
}

struct Worker<SM: StateMachine> {
    sm: SM,
    sinks: SinkFactory,
    /// A leader's snapshot being staged: its index, and the sink (`None` once a
    /// write to it failed: the snapshot is then rejected when complete).
    staging: Option<(LogIndex, Option<SnapshotSink>)>,
    applied: LogIndex,
    /// The applied index last reported to the node task.
    reported: LogIndex,
    /// Reads waiting for their index, in index order of arrival.
    waiting: VecDeque<(LogIndex, SM::Query, Reply<SM::QueryResponse>)>,
    events: broadcast::Sender<RaftEvent>,
    counters: Arc<Counters>,
    reports: mpsc::UnboundedSender<ApplyReport>,
    id: String,
}

impl<SM: StateMachine> Worker<SM> {
    fn new(p: WorkerParts<SM>) -> Self {
        Worker {
            sm: p.sm,
            sinks: p.sinks,
            staging: None,
            applied: p.applied,
            reported: p.applied,
            waiting: VecDeque::new(),
            events: p.events,
            counters: p.counters,
            reports: p.reports,
            id: p.name,
        }
    }

    /// After a round of jobs: serve the reads it made servable, then report once what
    /// was applied.
    fn finish_round(&mut self) {
        self.serve_reads();
        if self.applied > self.reported {
            self.reported = self.applied;
            let _ = self.reports.send(ApplyReport::Applied(self.applied));
        }
    }

    fn handle(&mut self, job: ApplyJob<SM>) {
        match job {
            ApplyJob::Entries(entries, proposals) => self.apply(entries, proposals),
            ApplyJob::Chunk(chunk, acks) => {
                self.stage(chunk);
                if !acks.is_empty() {
                    let _ = self.reports.send(ApplyReport::Staged(acks));
                }
            }
            ApplyJob::Read(index, query, reply) => {
                if index <= self.applied {
                    let _ = reply.send(Ok(self.sm.query(query)));
                } else {
                    self.waiting.push_back((index, query, reply));
                }
            }
            ApplyJob::ReadLocal(query, reply) => {
                let _ = reply.send(Ok(self.sm.query(query)));
            }
            ApplyJob::Snapshot => {
                // The node may take a snapshot only at an index it knows is applied.
                if self.applied > self.reported {
                    self.reported = self.applied;
                    let _ = self.reports.send(ApplyReport::Applied(self.applied));
                }
                let staged = self.take_snapshot();
                let _ = self.reports.send(ApplyReport::Snapshot(self.applied, staged));
            }
        }
    }

    /// The state machine writes its state into a new sink.
    fn take_snapshot(&mut self) -> Result<StagedSnapshot> {
        let mut sink = (self.sinks)()?;
        self.sm.write_snapshot(&mut sink).map_err(Error::StateMachine)?;
        Ok(sink.finish()?)
    }

    /// Stages a chunk of a leader's snapshot; the last one gets the state machine's
    /// verdict.
    fn stage(&mut self, chunk: SnapshotChunk) {
        let index = chunk.meta.index;
        if chunk.offset == 0 {
            let sink = match (self.sinks)() {
                Ok(sink) => Some(sink),
                Err(e) => {
                    warn!(id = %self.id, index, error = %e, "cannot stage a snapshot");
                    None
                }
            };
            self.staging = Some((index, sink));
        }
        let Some((staged_index, slot)) = self.staging.as_mut() else {
            return;
        };
        if *staged_index != index {
            return;
        }
        if let Some(sink) = slot.as_mut() {
            let fits = sink.len() == chunk.offset;
            if !fits || std::io::Write::write_all(sink, &chunk.data).is_err() {
                warn!(id = %self.id, index, offset = chunk.offset, "cannot stage a snapshot chunk");
                *slot = None;
            }
        }
        if !chunk.done {
            return;
        }
        let staged = self
            .staging
            .take()
            .and_then(|(_, sink)| sink)
            .and_then(|sink| match sink.finish() {
                Ok(staged) => Some(staged),
                Err(e) => {
                    warn!(id = %self.id, index, error = %e, "cannot stage a snapshot");
                    None
                }
            });
        let verdict = staged.filter(|s| s.len() == chunk.total && s.crc() == chunk.crc).and_then(|staged| {
            if index <= self.applied {
                // Already applied past it: the core will find it covered.
                return Some(staged);
            }
            info!(id = %self.id, index, bytes = staged.len(), "restoring the state machine from a leader's snapshot");
            let restored = self.sm.read_snapshot(&mut staged.reader());
            match restored {
                Ok(()) => {
                    self.applied = index;
                    Counters::add(&self.counters.snapshots_installed, 1);
                    let _ = self.events.send(RaftEvent::SnapshotInstalled { index });
                    self.serve_reads();
                    Some(staged)
                }
                Err(e) => {
                    crate::warn_limited!(id = %self.id, index, error = %e, "the state machine rejects a leader's snapshot");
                    None
                }
            }
        });
        if verdict.is_none() {
            Counters::add(&self.counters.snapshots_rejected, 1);
        }
        let _ = self.reports.send(ApplyReport::Checked(index, verdict));
    }

    fn apply(&mut self, entries: Vec<Entry>, proposals: Vec<(LogIndex, Term, Reply<SM::Response>)>) {
        let mut proposals = proposals.into_iter().peekable();
        let Some(last) = entries.last().map(|e| e.index) else {
            return;
        };
        for e in entries {
            if e.index <= self.applied {
                continue; // covered by a restored snapshot
            }
            self.applied = e.index;
            Counters::add(&self.counters.applied, 1);
            while proposals.peek().is_some_and(|(i, _, _)| *i < e.index) {
                if let Some((_, _, reply)) = proposals.next() {
                    let _ = reply.send(Err(Error::ProposalDropped));
                }
            }
            let pending = proposals.next_if(|(i, _, _)| *i == e.index);
            match e.payload {
                EntryPayload::Command(bytes) => {
                    let outcome = match postcard::from_bytes::<SM::Command>(&bytes) {
                        Ok(cmd) => Ok(self.sm.apply(e.index, cmd)),
                        Err(err) => {
                            error!(id = %self.id, index = e.index, error = %err, "undecodable command skipped");
                            Err(Error::Encoding(err.to_string()))
                        }
                    };
                    if let Some((_, term, reply)) = pending {
                        let _ = reply.send(if term == e.term {
                            outcome
                        } else {
                            Err(Error::ProposalDropped)
                        });
                    }
                }
                _ => {
                    if let Some((_, _, reply)) = pending {
                        let _ = reply.send(Err(Error::ProposalDropped));
                    }
                }
            }
            let _ = self.events.send(RaftEvent::EntryApplied {
                index: e.index,
                term: e.term,
            });
        }
        for (_, _, reply) in proposals {
            let _ = reply.send(Err(Error::ProposalDropped));
        }
        // Entries covered by a restored snapshot count as applied too.
        self.applied = self.applied.max(last);
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let mut still = VecDeque::new();
        while let Some((index, query, reply)) = self.waiting.pop_front() {
            if reply.is_closed() {
                continue;
            }
            if index <= applied {
                let _ = reply.send(Ok(self.sm.query(query)));
            } else {
                still.push_back((index, query, reply));
            }
        }
        self.waiting = still;
    }
}

impl<SM: StateMachine> Drop for Worker<SM> {
    /// The node is gone: the reads still waiting will never be served.
    fn drop(&mut self) {
        for (_, _, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(Error::Stopped));
        }
    }
}
