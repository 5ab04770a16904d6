//! [`ReadyDriver`]: the [`Ready`] contract carried out once, without IO, in the order
//! of a driver that persists asynchronously (a log writer beside the node).

use std::collections::VecDeque;
use std::fmt;

use crate::entry::{Entry, Snapshot};
use crate::message::Message;
use crate::raw_node::RawNode;
use crate::read_queue::ReadState;
use crate::ready::Ready;
use crate::storage::Storage;
use crate::types::{HardState, LogIndex, NodeId, SoftState, Term};

/// The number of a persist job: 1, 2, 3... in the order the driver handed them out.
/// The disk must make them durable, and report them, in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job#{}", self.0)
    }
}

/// Which hard states the driver asks to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HardStateWrites {
    /// Only those whose term or vote changed since the last one queued: a commit-only
    /// change is not written (it is learned again after a restart).
    #[default]
    TermAndVote,
    /// Every hard state the Ready reports (term, vote or commit changed).
    Every,
}

/// What one Ready asks to persist, in this order: the snapshot (replacing the log
/// behind it), the entries (replacing any stored entries from `entries[0].index` on),
/// then the hard state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistJob {
    /// The job's number; report it to [`ReadyDriver::on_persisted`] once durable.
    pub id: JobId,
    /// A snapshot from the leader.
    pub snapshot: Option<Snapshot>,
    /// Entries to append.
    pub entries: Vec<Entry>,
    /// The hard state, if it must be written (see [`HardStateWrites`]).
    pub hard_state: Option<HardState>,
}

/// What the caller does now with one Ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// The role, leader or term changed (for observers; nothing to do).
    pub soft_state: Option<SoftState>,
    /// Messages to send now: the Ready's `messages`, and its `persisted_messages` if
    /// nothing they depend on is still being written.
    pub messages: Vec<Message>,
    /// The write to queue, if the Ready has something to persist.
    pub persist: Option<PersistJob>,
    /// Committed entries to apply, in order (after installing the job's snapshot, if
    /// it has one: see [`Work::snapshot_to_install`]).
    pub committed_entries: Vec<Entry>,
    /// Reads to serve once the state machine has applied their index.
    pub read_states: Vec<ReadState>,
    /// Chunks of a leader's snapshot for the caller to stage
    /// ([`crate::Config::stream_snapshots`]; see [`Ready::snapshot_chunks`]).
    pub snapshot_chunks: Vec<crate::message::SnapshotChunk>,
}

impl Work {
    /// The leader's snapshot to install in the state machine now (it holds only
    /// committed entries); entries after it are handed out once it is persisted.
    pub fn snapshot_to_install(&self) -> Option<&Snapshot> {
        self.persist.as_ref().and_then(|j| j.snapshot.as_ref())
    }
}

/// A completion the driver cannot match to an outstanding job; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    /// The job was already reported (or belonged to an earlier life of the node).
    #[error("{job} was already reported durable (outstanding from {next:?} on)")]
    Stale {
        /// The reported job.
        job: JobId,
        /// The oldest outstanding job, if any.
        next: Option<JobId>,
    },
    /// No such job was handed out.
    #[error("{job} was never handed out (the last was {last})")]
    Unknown {
        /// The reported job.
        job: JobId,
        /// The last job handed out.
        last: JobId,
    },
}

/// An outstanding job: what to report to the core once it is durable, and the
/// messages that wait for it.
#[derive(Debug)]
struct Pending {
    id: JobId,
    last_entry: Option<(LogIndex, Term)>,
    snapshot: Option<LogIndex>,
    hard_state: Option<HardState>,
    messages: Vec<Message>,
}

/// Carries out the [`Ready`] contract for one [`RawNode`] whose writes complete
/// asynchronously, in order.
///
/// A runtime, the simulator, a test harness and a benchmark all do the same with each
/// Ready: send `messages` at once; queue the snapshot, entries and hard state for
/// writing; keep `persisted_messages` (votes and append acknowledgements, which promise
/// durable state) until that write is durable; apply `committed_entries`; serve
/// `read_states`. The `ReadyDriver` does the bookkeeping and leaves the IO to its
/// caller:
///
/// ```
/// use raft_core::{Config, MemStorage, RawNode, ReadyDriver, Role};
///
/// let mut raw = RawNode::new(Config::new("n1"), MemStorage::with_voters(["n1"])).unwrap();
/// let mut driver = ReadyDriver::new(raw.storage().hard_state());
/// let mut disk = Vec::new(); // the writes queued and not yet durable
/// raw.campaign();
/// while raw.has_ready() || !disk.is_empty() {
///     if raw.has_ready() {
///         let rd = raw.ready();
///         let work = driver.on_ready(&mut raw, rd); // acknowledges it: advance_async
///         // send(work.messages) ...
///         disk.extend(work.persist); // a numbered job
///         // apply(work.committed_entries), serve(work.read_states) ...
///         if let Some(e) = work.committed_entries.last() {
///             raw.applied_to(e.index);
///         }
///     } else {
///         // Later the disk makes the queued jobs durable, in order, and says so.
///         let store = raw.storage_mut();
///         for job in &disk {
///             store.append(&job.entries).unwrap();
///             if let Some(hs) = &job.hard_state {
///                 store.set_hard_state(hs.clone());
///             }
///         }
///         let last = disk.drain(..).last().unwrap().id;
///         let released = driver.on_persisted(&mut raw, last).unwrap();
///         // send(released): the votes and acknowledgements that waited
///         # let _ = released;
///     }
/// }
/// assert_eq!(raw.role(), Role::Leader);
/// assert_eq!(raw.persisted_index(), raw.commit_index());
/// ```
///
/// A synchronous driver writes each job at once and reports it right away; the order
/// of effects is the same. A crash is dropping the driver with its outstanding jobs:
/// what they held was never written, and the messages waiting for them never leave.
///
/// Hard states: Raft needs only the term and the vote to be durable before a message
/// leaves (the commit index is learned again from the leader after a restart), so by
/// default a hard state is written only when its term or vote differs from the last
/// one queued ([`HardStateWrites::TermAndVote`], the runtime's choice: it saves a write
/// on almost every Ready). [`HardStateWrites::Every`] writes every change.
#[derive(Debug)]
pub struct ReadyDriver {
    /// The term and vote of the last hard state queued (or found on disk).
    queued_vote: (Term, Option<NodeId>),
    writes: HardStateWrites,
    last_id: JobId,
    pending: VecDeque<Pending>,
}

impl ReadyDriver {
    /// A driver for a node that starts from the persisted hard state `persisted`.
    pub fn new(persisted: &HardState) -> Self {
        ReadyDriver {
            queued_vote: (persisted.term, persisted.vote.clone()),
            writes: HardStateWrites::default(),
            last_id: JobId(0),
            pending: VecDeque::new(),
        }
    }

    /// Chooses which hard states are written (default: [`HardStateWrites::TermAndVote`]).
    pub fn with_hard_state_writes(mut self, writes: HardStateWrites) -> Self {
        self.writes = writes;
        self
    }

    /// Takes `rd`, the Ready `raw.ready()` just returned, acknowledges it with
    /// [`RawNode::advance_async`] and says what to do now. The Ready's
    /// `persisted_messages` are held until its job — or, if it has nothing to write,
    /// the last outstanding job — is reported durable.
    pub fn on_ready<S: Storage>(&mut self, raw: &mut RawNode<S>, rd: Ready) -> Work {
        raw.advance_async();
        let Ready {
            soft_state,
            hard_state,
            entries,
            snapshot,
            mut messages,
            persisted_messages,
            committed_entries,
            read_states,
            snapshot_chunks,
        } = rd;
        let hard_state = hard_state.filter(|hs| match self.writes {
            HardStateWrites::Every => true,
            HardStateWrites::TermAndVote => (hs.term, &hs.vote) != (self.queued_vote.0, &self.queued_vote.1),
        });
        if let Some(hs) = &hard_state {
            self.queued_vote = (hs.term, hs.vote.clone());
        }
        let persist = if snapshot.is_some() || !entries.is_empty() || hard_state.is_some() {
            self.last_id = JobId(self.last_id.0 + 1);
            self.pending.push_back(Pending {
                id: self.last_id,
                last_entry: entries.last().map(|e| (e.index, e.term)),
                snapshot: snapshot.as_ref().map(|s| s.meta.index),
                hard_state: hard_state.clone(),
                messages: Vec::new(),
            });
            Some(PersistJob {
                id: self.last_id,
                snapshot,
                entries,
                hard_state,
            })
        } else {
            None
        };
        let persisted_messages = if raw.planted_bugs().ack_before_persist {
            // The planted bug: the acknowledgements leave before the write is durable.
            messages.extend(persisted_messages);
            Vec::new()
        } else {
            persisted_messages
        };
        // They promise what this Ready and every earlier one asked to write: they wait
        // for the newest outstanding job (the disk reports in order).
        match self.pending.back_mut() {
            Some(p) => p.messages.extend(persisted_messages),
            None => messages.extend(persisted_messages),
        }
        Work {
            soft_state,
            messages,
            persist,
            committed_entries,
            read_states,
            snapshot_chunks,
        }
    }

    /// The disk made `job`, and so every job before it, durable: tells `raw`
    /// ([`RawNode::on_snapshot_persisted`], [`RawNode::on_persisted`],
    /// [`RawNode::on_hard_state_persisted`]) job by job, and
    /// returns the messages that waited for them, in order. Reporting a later job
    /// covers the earlier ones (a batched report); a job already reported, or never
    /// handed out, is refused without any change.
    pub fn on_persisted<S: Storage>(
        &mut self,
        raw: &mut RawNode<S>,
        job: JobId,
    ) -> Result<Vec<Message>, CompletionError> {
        if job > self.last_id {
            return Err(CompletionError::Unknown {
                job,
                last: self.last_id,
            });
        }
        match self.pending.front() {
            Some(p) if p.id <= job => {}
            front => {
                return Err(CompletionError::Stale {
                    job,
                    next: front.map(|p| p.id),
                })
            }
        }
        let mut released = Vec::new();
        while let Some(p) = self.pending.pop_front() {
            if let Some(index) = p.snapshot {
                raw.on_snapshot_persisted(index);
            }
            if let Some((index, term)) = p.last_entry {
                raw.on_persisted(index, term);
            }
            if let Some(hs) = &p.hard_state {
                raw.on_hard_state_persisted(hs);
            }
            released.extend(p.messages);
            if p.id == job {
                break;
            }
        }
        Ok(released)
    }

    /// The jobs handed out and not yet reported durable.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// The oldest outstanding job, the next the disk will report.
    pub fn next_to_complete(&self) -> Option<JobId> {
        self.pending.front().map(|p| p.id)
    }

    /// The last job handed out (`JobId(0)` before the first).
    pub fn last_job(&self) -> JobId {
        self.last_id
    }

    /// The term and vote of the last hard state queued for writing (or found on disk).
    pub fn queued_vote(&self) -> (Term, Option<&NodeId>) {
        (self.queued_vote.0, self.queued_vote.1.as_ref())
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
