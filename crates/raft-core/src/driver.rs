//! [`ReadyDriver`]: the [`Ready`] contract carried out once, without IO, in the order
//! of a driver that persists asynchronously (a log writer beside the node).

use std::collections::VecDeque;
use std::fmt;

use crate::entry::{Entry, Snapshot};
use crate::message::Message;
use crate::raw_node::{RawNode, Ready};
use crate::read_queue::ReadState;
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
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::entry::EntryPayload;
    use crate::mem_storage::MemStorage;
    use crate::message::{AppendRequest, AppendResponse, Heartbeat, MessageBody, VoteRequest};
    use crate::planted_bugs::PlantedBugs;

    fn follower() -> RawNode<MemStorage> {
        RawNode::new(Config::new("n2"), MemStorage::with_voters(["n1", "n2", "n3"])).expect("valid config")
    }

    fn from_leader(term: Term, body: MessageBody) -> Message {
        Message {
            group: 0,
            from: NodeId::new("n1"),
            to: NodeId::new("n2"),
            term,
            body,
        }
    }

    fn append(term: Term, prev: (LogIndex, Term), indexes: std::ops::RangeInclusive<u64>, commit: u64) -> Message {
        let entries = indexes
            .map(|index| Entry {
                term,
                index,
                payload: EntryPayload::Noop,
            })
            .collect();
        from_leader(
            term,
            MessageBody::AppendEntries(AppendRequest {
                prev_log_index: prev.0,
                prev_log_term: prev.1,
                entries,
                commit,
            }),
        )
    }

    fn accepted(msgs: &[Message]) -> Vec<LogIndex> {
        msgs.iter()
            .filter_map(|m| match &m.body {
                MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index }) => Some(*match_index),
                _ => None,
            })
            .collect()
    }

    /// Steps `m` into `raw` and hands its Ready to `d`.
    fn step(d: &mut ReadyDriver, raw: &mut RawNode<MemStorage>, m: Message) -> Work {
        raw.step(m).expect("valid message");
        let rd = raw.ready();
        d.on_ready(raw, rd)
    }

    fn write(raw: &mut RawNode<MemStorage>, job: &PersistJob) {
        let store = raw.storage_mut();
        if let Some(s) = &job.snapshot {
            store.apply_snapshot(s.clone());
        }
        store.append(&job.entries).expect("contiguous");
        if let Some(hs) = &job.hard_state {
            store.set_hard_state(hs.clone());
        }
    }

    #[test]
    fn acknowledgements_wait_for_their_job_and_messages_do_not() {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default());
        let w = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
        assert!(accepted(&w.messages).is_empty(), "the ack must wait: {:?}", w.messages);
        let job = w.persist.expect("entries and a new term to write");
        assert_eq!((job.id, job.entries.len()), (JobId(1), 2));
        assert_eq!(job.hard_state.as_ref().map(|h| h.term), Some(1));
        assert_eq!((d.outstanding(), raw.persisted_index()), (1, 0));
        write(&mut raw, &job);
        let released = d.on_persisted(&mut raw, job.id).expect("outstanding");
        assert_eq!(accepted(&released), vec![2]);
        assert_eq!((d.outstanding(), raw.persisted_index()), (0, 2));
    }

    #[test]
    fn commit_only_changes_are_not_written_unless_asked() {
        for (writes, expect_job) in [(HardStateWrites::TermAndVote, false), (HardStateWrites::Every, true)] {
            let mut raw = follower();
            let mut d = ReadyDriver::new(&HardState::default()).with_hard_state_writes(writes);
            let w = step(&mut d, &mut raw, append(1, (0, 0), 1..=1, 0));
            let job = w.persist.expect("entries");
            write(&mut raw, &job);
            d.on_persisted(&mut raw, job.id).expect("outstanding");
            // A heartbeat moves only the commit index.
            let hb = from_leader(
                1,
                MessageBody::Heartbeat(Heartbeat {
                    commit: 1,
                    read_round: 0,
                }),
            );
            let w = step(&mut d, &mut raw, hb);
            assert_eq!(w.persist.is_some(), expect_job, "{writes:?}: {:?}", w.persist);
            assert_eq!(w.committed_entries.len(), 1, "the persisted entry applies either way");
        }
    }

    #[test]
    fn an_ack_without_a_write_of_its_own_waits_for_the_writes_before_it() {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default());
        let w1 = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
        let job1 = w1.persist.expect("a write");
        // The same append again: nothing new to write, but its ack promises entry 2.
        let w2 = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
        assert!(w2.persist.is_none());
        assert!(accepted(&w2.messages).is_empty(), "it must wait for job 1");
        write(&mut raw, &job1);
        assert_eq!(
            accepted(&d.on_persisted(&mut raw, job1.id).expect("outstanding")),
            vec![2, 2]
        );
        // With nothing outstanding, an ack leaves at once.
        let w3 = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
        assert_eq!((w3.persist.is_none(), accepted(&w3.messages)), (true, vec![2]));
    }

    #[test]
    fn a_batched_report_releases_every_job_up_to_it_in_order_and_stale_ones_are_refused() {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default());
        let j1 = step(&mut d, &mut raw, append(1, (0, 0), 1..=1, 0))
            .persist
            .expect("a write");
        let j2 = step(&mut d, &mut raw, append(1, (1, 1), 2..=3, 0))
            .persist
            .expect("a write");
        let j3 = step(&mut d, &mut raw, append(1, (3, 1), 4..=4, 0))
            .persist
            .expect("a write");
        assert_eq!(
            (j1.id, j2.id, j3.id, d.outstanding()),
            (JobId(1), JobId(2), JobId(3), 3)
        );
        assert!(j2.hard_state.is_none(), "the term was queued with job 1");
        for j in [&j1, &j2] {
            write(&mut raw, j);
        }
        assert_eq!(
            accepted(&d.on_persisted(&mut raw, j2.id).expect("outstanding")),
            vec![1, 3]
        );
        assert_eq!((raw.persisted_index(), d.next_to_complete()), (3, Some(JobId(3))));
        assert_eq!(
            d.on_persisted(&mut raw, j1.id),
            Err(CompletionError::Stale {
                job: JobId(1),
                next: Some(JobId(3))
            })
        );
        assert_eq!(
            d.on_persisted(&mut raw, JobId(9)),
            Err(CompletionError::Unknown {
                job: JobId(9),
                last: JobId(3)
            })
        );
        assert_eq!(
            (d.outstanding(), raw.persisted_index()),
            (1, 3),
            "refused reports change nothing"
        );
        write(&mut raw, &j3);
        assert_eq!(
            accepted(&d.on_persisted(&mut raw, j3.id).expect("outstanding")),
            vec![4]
        );
        assert!(matches!(
            d.on_persisted(&mut raw, j3.id),
            Err(CompletionError::Stale { next: None, .. })
        ));
    }

    #[test]
    fn the_node_keeps_working_while_jobs_are_outstanding_and_overwrites_are_reported_safely() {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default());
        let j1 = step(&mut d, &mut raw, append(1, (0, 0), 1..=3, 0))
            .persist
            .expect("a write");
        // A leader of term 2 overwrites entries 2..=3 before job 1 is durable.
        let j2 = step(&mut d, &mut raw, append(2, (1, 1), 2..=2, 0))
            .persist
            .expect("a write");
        assert_eq!(raw.log_last_index(), 2);
        write(&mut raw, &j1);
        // Job 1's last entry (3 of term 1) is gone: the core ignores it, and the node
        // does not count anything beyond what is durable and still in its log.
        let released = d.on_persisted(&mut raw, j1.id).expect("outstanding");
        assert_eq!(accepted(&released), vec![3]);
        assert_eq!(raw.persisted_index(), 0);
        write(&mut raw, &j2);
        assert_eq!(
            accepted(&d.on_persisted(&mut raw, j2.id).expect("outstanding")),
            vec![2]
        );
        assert_eq!(raw.persisted_index(), 2);
    }

    #[test]
    fn a_crash_loses_the_outstanding_jobs_and_their_acknowledgements() {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default());
        let vote = Message {
            group: 0,
            from: NodeId::new("n3"),
            to: NodeId::new("n2"),
            term: 1,
            body: MessageBody::RequestVote(VoteRequest {
                pre_vote: false,
                last_log_index: 0,
                last_log_term: 0,
                leadership_transfer: false,
            }),
        };
        let w = step(&mut d, &mut raw, vote);
        assert!(w.messages.is_empty(), "the vote waits for its write: {:?}", w.messages);
        assert_eq!(d.queued_vote(), (1, Some(&NodeId::new("n3"))));
        let j1 = w.persist.expect("a vote to write");
        write(&mut raw, &j1);
        assert_eq!(d.on_persisted(&mut raw, j1.id).expect("outstanding").len(), 1);
        let w = step(&mut d, &mut raw, append(2, (0, 0), 1..=1, 0));
        assert!(w.persist.is_some() && accepted(&w.messages).is_empty());
        // Crash: the driver and its outstanding job are dropped, the disk keeps job 1.
        drop(d);
        let disk = raw.into_storage();
        assert_eq!(
            (disk.hard_state().term, disk.hard_state().vote.clone()),
            (1, Some(NodeId::new("n3")))
        );
        let raw = RawNode::new(Config::new("n2"), disk).expect("restart");
        assert_eq!((raw.term(), raw.status().last_index), (1, 0));
        let d = ReadyDriver::new(raw.storage().hard_state());
        assert_eq!((d.outstanding(), d.last_job(), d.queued_vote().0), (0, JobId(0), 1));
    }

    #[test]
    fn a_leaders_snapshot_is_written_and_installed() {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default());
        let meta = crate::entry::SnapshotMeta {
            index: 5,
            term: 1,
            membership: raw.status().membership,
        };
        let chunk = from_leader(
            1,
            MessageBody::InstallSnapshot(crate::message::SnapshotChunk {
                meta: meta.clone(),
                offset: 0,
                data: bytes::Bytes::from_static(b"state"),
                done: true,
                total: 5,
                crc: crc32fast::hash(b"state"),
            }),
        );
        let w = step(&mut d, &mut raw, chunk);
        assert_eq!(w.snapshot_to_install().map(|s| s.meta.index), Some(5));
        let job = w.persist.clone().expect("a write");
        write(&mut raw, &job);
        let released = d.on_persisted(&mut raw, job.id).expect("outstanding");
        assert_eq!(released.len(), 1, "the snapshot's answer waited: {released:?}");
        assert_eq!((raw.status().applied, raw.persisted_index()), (5, 5));
    }

    #[test]
    fn the_planted_bug_acknowledges_before_the_write() {
        let mut config = Config::new("n2");
        config.bugs = PlantedBugs {
            ack_before_persist: true,
            ..Default::default()
        };
        let mut raw = RawNode::new(config, MemStorage::with_voters(["n1", "n2", "n3"])).expect("valid config");
        let mut d = ReadyDriver::new(&HardState::default());
        let w = step(&mut d, &mut raw, append(1, (0, 0), 1..=1, 0));
        assert_eq!(accepted(&w.messages), vec![1]);
        assert!(w.persist.is_some());
    }
}
