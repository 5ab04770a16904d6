//! `RawNode`: the API a driver uses. Inputs go in through `tick`, `step`, `propose`,
//! `read_index` and `transfer_leader`; effects come out in a [`Ready`].

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use crate::config::Config;
use crate::entry::{Entry, Snapshot};
use crate::error::Result;
use crate::membership::MembershipChange;
use crate::message::Message;
use crate::planted_bugs::PlantedBugs;
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::read_queue::ReadState;
use crate::storage::Storage;
use crate::types::{HardState, LogIndex, Membership, NodeId, Role, SoftState, Term};

/// Everything the driver must do after some inputs, in this order:
///
/// 1. send `messages` (they may leave before anything is persisted);
/// 2. persist `snapshot` (if any), then `entries` (replacing any stored entries from
///    `entries[0].index` on), then `hard_state` (if any);
/// 3. only then send `persisted_messages` (votes and append acknowledgements, which
///    promise durable state); a candidate counts its own vote only then, too (see
///    [`RawNode::on_hard_state_persisted`]);
/// 4. install `snapshot` in the state machine, then apply `committed_entries` in order;
/// 5. serve each of `read_states` once the state machine has applied its index;
/// 6. call [`RawNode::advance`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// The role, leader or term changed.
    pub soft_state: Option<SoftState>,
    /// The hard state changed and must be persisted.
    pub hard_state: Option<HardState>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// A snapshot from the leader, to persist and install. With
    /// [`crate::Config::stream_snapshots`] its `data` is empty: it is the snapshot the
    /// driver staged from [`Ready::snapshot_chunks`] and accepted.
    pub snapshot: Option<Snapshot>,
    /// With [`crate::Config::stream_snapshots`]: chunks of a snapshot from the leader,
    /// in order, for the driver to stage (a chunk at offset 0 starts the staging over).
    /// When the last one (`done`) is staged, the driver lets the state machine check
    /// the snapshot and reports with [`RawNode::snapshot_received`]. Nothing promises
    /// durability here; they may be written after `messages` were sent.
    pub snapshot_chunks: Vec<crate::message::SnapshotChunk>,
    /// Messages that may be sent at once.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after this Ready's state is persisted.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply to the state machine.
    pub committed_entries: Vec<Entry>,
    /// Linearizable reads that may be served once their index is applied.
    pub read_states: Vec<ReadState>,
}

impl fmt::Display for Ready {
    /// One line: `hs=3/node1/5 ents=2..=4 commit=1..=3 msgs=4+1 reads=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = &self.soft_state {
            parts.push(format!(
                "{} t{} leader={:?}",
                s.role,
                s.term,
                s.leader.as_ref().map(|l| l.as_str())
            ));
        }
        if let Some(h) = &self.hard_state {
            parts.push(format!(
                "hs=t{}/vote={:?}/commit={}",
                h.term,
                h.vote.as_ref().map(|v| v.as_str()),
                h.commit
            ));
        }
        if let Some(s) = &self.snapshot {
            parts.push(format!("snap={}/{}", s.meta.index, s.meta.term));
        }
        if let (Some(a), Some(b)) = (self.entries.first(), self.entries.last()) {
            parts.push(format!("ents={}..={}", a.index, b.index));
        }
        if let (Some(a), Some(b)) = (self.committed_entries.first(), self.committed_entries.last()) {
            parts.push(format!("apply={}..={}", a.index, b.index));
        }
        if !self.messages.is_empty() || !self.persisted_messages.is_empty() {
            parts.push(format!(
                "msgs={}+{}",
                self.messages.len(),
                self.persisted_messages.len()
            ));
        }
        if !self.read_states.is_empty() {
            parts.push(format!("reads={}", self.read_states.len()));
        }
        f.write_str(&parts.join(" "))
    }
}

/// Where the leader stands with one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerProgress {
    /// The highest index known to match the leader's log.
    pub match_index: LogIndex,
    /// The next index to send.
    pub next_index: LogIndex,
    /// The replication mode.
    pub state: ProgressState,
}

/// A snapshot of a node's state for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// The role.
    pub role: Role,
    /// The current term.
    pub term: Term,
    /// The vote in this term.
    pub vote: Option<NodeId>,
    /// The known leader.
    pub leader: Option<NodeId>,
    /// The commit index.
    pub commit: LogIndex,
    /// The applied index.
    pub applied: LogIndex,
    /// The first index still in the log.
    pub first_index: LogIndex,
    /// The last index of the log.
    pub last_index: LogIndex,
    /// The membership in effect.
    pub membership: Membership,
    /// Per-member replication progress (on the leader only).
    pub progress: BTreeMap<NodeId, PeerProgress>,
}

/// What a Ready handed out, so `advance` knows what was persisted and applied.
#[derive(Debug, Default)]
struct Handed {
    last_entry: Option<(LogIndex, Term)>,
    hard_state: Option<HardState>,
    snapshot: Option<LogIndex>,
    last_applied: Option<LogIndex>,
}

/// A Raft node without IO: the driver calls it and carries out its [`Ready`]s.
///
/// Call [`RawNode::ready`] and [`RawNode::advance`] strictly in turn: after a `ready`,
/// the next call of `ready` must follow an `advance`.
pub struct RawNode<S> {
    raft: Raft<S>,
    prev_soft: SoftState,
    prev_hard: HardState,
    handed: Handed,
    max_apply_bytes: u64,
    max_unapplied: u64,
}

impl<S: Storage> RawNode<S> {
    /// Creates a node, or restarts one from what `storage` persisted.
    pub fn new(config: Config, storage: S) -> Result<Self> {
        let raft = Raft::new(config, storage)?;
        Ok(RawNode {
            prev_soft: raft.soft_state(),
            prev_hard: raft.hard_state(),
            raft,
            handed: Handed::default(),
            max_apply_bytes: 64 << 20,
            max_unapplied: u64::MAX,
        })
    }

    /// Caps the committed entries handed out for applying but not yet reported
    /// applied ([`RawNode::applied_to`]): a driver that applies asynchronously keeps
    /// its apply queue bounded with it. Unlimited by default.
    pub fn set_max_unapplied(&mut self, entries: u64) {
        self.max_unapplied = entries.max(1);
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Feeds in a message from the network. Stale, duplicated or nonsensical messages
    /// are ignored. Errors, after which nothing changed: `Error::Misdelivered` for a
    /// message for another node or group, `Error::Refused` for one whose term or
    /// indexes are beyond the bounds in [`crate::bounds`] (the driver drops it).
    pub fn step(&mut self, message: Message) -> Result<()> {
        self.raft.step(message)
    }

    /// Campaigns now instead of waiting for the election timeout.
    pub fn campaign(&mut self) {
        let pre = self.raft.cfg.pre_vote;
        if self.raft.role != Role::Leader {
            self.raft.campaign(pre, false);
        }
    }

    /// Proposes a command. On the leader it is appended to the log and its
    /// `(term, index)` returned: it was applied as proposed if the entry applied at that
    /// index has that term. Elsewhere: `Error::NotLeader` with a hint.
    pub fn propose(&mut self, command: Bytes) -> Result<(Term, LogIndex)> {
        self.raft.propose(vec![command])
    }

    /// Proposes several commands at once; returns the term and the index of the last.
    pub fn propose_batch(&mut self, commands: Vec<Bytes>) -> Result<(Term, LogIndex)> {
        self.raft.propose(commands)
    }

    /// Asks for a linearizable read. The answer comes out as a [`ReadState`] with the
    /// same `context` in a later Ready (if leadership is lost meanwhile, never: the
    /// caller retries after a timeout).
    pub fn read_index(&mut self, context: Bytes) -> Result<()> {
        self.raft.read_index(context)
    }

    /// Proposes a membership change (on the leader). Voter changes go through a joint
    /// configuration that the leader leaves by itself once it commits; learner-only
    /// changes take one entry. Returns the term and index of the configuration entry.
    /// Refused while another change is in flight.
    pub fn propose_membership_change(&mut self, changes: &[MembershipChange]) -> Result<(Term, LogIndex)> {
        self.raft.propose_membership_change(changes)
    }

    /// The application snapshotted its state machine at `index` (at most the applied
    /// index). Returns the snapshot with its metadata (term, membership at `index`);
    /// the driver persists it (e.g. `MemStorage::apply_snapshot`), which compacts the
    /// log behind it.
    pub fn create_snapshot(&mut self, index: LogIndex, data: Bytes) -> Result<Snapshot> {
        self.raft.create_snapshot(index, data)
    }

    /// The driver failed (`ok == false`) or succeeded in delivering a snapshot to `to`.
    pub fn report_snapshot(&mut self, to: &NodeId, ok: bool) {
        self.raft.report_snapshot(to, ok);
    }

    /// The driver could not deliver a message to `to`.
    pub fn report_unreachable(&mut self, to: &NodeId) {
        self.raft.report_unreachable(to);
    }

    /// Hands leadership to `to`: the leader brings it up to date and then tells it to
    /// campaign at once. Proposals are refused until the transfer ends.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<()> {
        self.raft.transfer_leader(to)
    }

    /// Whether [`RawNode::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        r.has_pending_flush()
            || !r.msgs.is_empty()
            || !r.msgs_after_persist.is_empty()
            || !r.log.unhanded_entries().is_empty()
            || r.log.unhanded_snapshot().is_some()
            || r.log.has_next_committed(self.max_unapplied)
            || r.reads.has_ready()
            || !r.snapshot_chunks_out.is_empty()
            || r.soft_state() != self.prev_soft
            || r.hard_state() != self.prev_hard
    }

    /// Collects the work for the driver. See [`Ready`] for what to do with it.
    pub fn ready(&mut self) -> Ready {
        self.raft.flush();
        let r = &mut self.raft;
        let soft = r.soft_state();
        let hard = r.hard_state();
        let entries = r.log.unhanded_entries().to_vec();
        let snapshot = r.log.unhanded_snapshot().cloned();
        r.log.hand_out();
        let committed_entries = r.log.next_committed_entries(self.max_apply_bytes, self.max_unapplied);
        self.handed = Handed {
            last_entry: entries.last().map(|e| (e.index, e.term)),
            hard_state: (hard != self.prev_hard).then(|| hard.clone()),
            snapshot: snapshot.as_ref().map(|s| s.meta.index),
            last_applied: committed_entries.last().map(|e| e.index),
        };
        let ready = Ready {
            soft_state: (soft != self.prev_soft).then(|| soft.clone()),
            hard_state: (hard != self.prev_hard).then(|| hard.clone()),
            entries,
            snapshot,
            messages: std::mem::take(&mut r.msgs),
            persisted_messages: std::mem::take(&mut r.msgs_after_persist),
            committed_entries,
            read_states: r.reads.take_ready(),
            snapshot_chunks: std::mem::take(&mut r.snapshot_chunks_out),
        };
        self.prev_soft = soft;
        self.prev_hard = hard;
        ready
    }

    /// Acknowledges the last Ready: its state is persisted, its messages sent, its
    /// committed entries applied.
    pub fn advance(&mut self) {
        let handed = std::mem::take(&mut self.handed);
        let r = &mut self.raft;
        if let Some(index) = handed.snapshot {
            r.log.stable_snapshot_to(index);
        }
        if let Some((index, term)) = handed.last_entry {
            r.log.stable_to(index, term);
            r.on_persisted(index, term);
        }
        if let Some(index) = handed.last_applied {
            r.log.applied_to(index);
        }
        if let Some(hs) = handed.hard_state {
            r.on_vote_persisted(hs.term, hs.vote.as_ref());
        }
    }

    /// Acknowledges the last Ready for a driver that persists and applies
    /// asynchronously: its `messages` were sent, and its entries, hard state and
    /// snapshot were queued for writing in order, and its committed entries for
    /// applying. The next [`RawNode::ready`] hands out only what is new. The driver
    /// reports completions later, in order: [`RawNode::on_snapshot_persisted`],
    /// [`RawNode::on_persisted`] and [`RawNode::on_hard_state_persisted`] once a
    /// Ready's writes are durable, when it may send that Ready's
    /// `persisted_messages`; [`RawNode::applied_to`] as the state machine applies.
    /// [`crate::ReadyDriver`] does all of this but the applying.
    pub fn advance_async(&mut self) {
        self.handed = Handed::default();
    }

    /// Asynchronous driver: the entries up to `index` (the last entry of a Ready,
    /// whose term was `term`) are durable. A stale report (the entry was overwritten
    /// since) is ignored.
    pub fn on_persisted(&mut self, index: LogIndex, term: Term) {
        let r = &mut self.raft;
        r.log.stable_to(index, term);
        r.on_persisted(index, term);
    }

    /// Asynchronous driver: a Ready's hard state `hs` is durable. A candidate counts
    /// its vote for itself only from now on (and may win the election here): until
    /// then a crash could make it forget the vote and campaign in the term again.
    pub fn on_hard_state_persisted(&mut self, hs: &HardState) {
        self.raft.on_vote_persisted(hs.term, hs.vote.as_ref());
    }

    /// Asynchronous driver: the snapshot at `index` is durable (and the state
    /// machine was restored from it, or will be before anything later applies).
    pub fn on_snapshot_persisted(&mut self, index: LogIndex) {
        self.raft.log.stable_snapshot_to(index);
    }

    /// Streaming driver ([`crate::Config::stream_snapshots`]): the snapshot at `index`,
    /// whose chunks it staged and whose checksum the core checked, is `accepted` by
    /// the state machine (it validated it, and may already hold its state) or not.
    /// Accepted, it is installed as if it had been assembled in memory (it comes out
    /// in [`Ready::snapshot`] to persist); rejected, the leader is asked to send it again
    /// from the start. A verdict for a snapshot no longer awaited is ignored.
    pub fn snapshot_received(&mut self, index: LogIndex, accepted: bool) {
        self.raft.snapshot_received(index, accepted);
    }

    /// Asynchronous driver: the state machine applied every entry up to `index`.
    pub fn applied_to(&mut self, index: LogIndex) {
        self.raft.log.applied_to(index);
    }

    /// A leader steps down to follower in its term (e.g. its disk is stalled, so it
    /// cannot count itself); it may be elected again later. No-op elsewhere.
    pub fn step_down(&mut self) {
        if self.raft.role == Role::Leader {
            let term = self.raft.term;
            self.raft.become_follower(term, None);
        }
    }

    /// The last index persisted to stable storage (entries after it are in memory).
    pub fn persisted_index(&self) -> LogIndex {
        self.raft.log.persisted_index()
    }

    /// The node's state.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        let progress = if r.role == Role::Leader {
            r.tracker
                .progress
                .iter()
                .map(|(id, p)| {
                    (
                        id.clone(),
                        PeerProgress {
                            match_index: p.match_index,
                            next_index: p.next_index,
                            state: p.state,
                        },
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Status {
            id: r.id.clone(),
            role: r.role,
            term: r.term,
            vote: r.vote.clone(),
            leader: r.leader.clone(),
            commit: r.log.committed,
            applied: r.log.applied,
            first_index: r.log.first_index(),
            last_index: r.log.last_index(),
            membership: r.tracker.membership.clone(),
            progress,
        }
    }

    /// The node's id.
    pub fn id(&self) -> &NodeId {
        &self.raft.id
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.raft.role
    }

    /// The node's current term.
    pub fn term(&self) -> Term {
        self.raft.term
    }

    /// The highest term this node accepts from a message now (see
    /// [`crate::bounds::term_limit`]); a message above it is `Error::Refused`.
    pub fn term_limit(&self) -> Term {
        self.raft.term_limit()
    }

    /// The commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.raft.log.committed
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<&NodeId> {
        self.raft.leader.as_ref()
    }

    /// The storage, for reading.
    pub fn storage(&self) -> &S {
        &self.raft.log.store
    }

    /// The storage, for the driver to persist a Ready into.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.raft.log.store
    }

    /// Consumes the node and returns its storage (a simulated crash keeps only this).
    pub fn into_storage(self) -> S {
        self.raft.log.store
    }

    /// One line describing the node, for logs and test failures.
    pub fn describe(&self) -> String {
        let r = &self.raft;
        let mut s = format!(
            "{} {} t{} vote={:?} leader={:?} log={}..={} commit={} applied={}",
            r.id,
            r.role,
            r.term,
            r.vote.as_ref().map(|v| v.as_str()),
            r.leader.as_ref().map(|v| v.as_str()),
            r.log.first_index(),
            r.log.last_index(),
            r.log.committed,
            r.log.applied
        );
        if r.role == Role::Leader {
            s.push_str(&format!(" uncommitted={}B", r.uncommitted.bytes()));
            for (id, p) in &r.tracker.progress {
                s.push_str(&format!(" [{id}: {p}]"));
            }
        }
        s
    }
}

impl<S: Storage> RawNode<S> {
    /// The bugs planted in this node ([`crate::Config::bugs`]), for the driver's check.
    pub(crate) fn planted_bugs(&self) -> &PlantedBugs {
        &self.raft.cfg.bugs
    }
}

/// Read access to the whole log (stable and unstable), e.g. for the simulator's checker.
impl<S: Storage> RawNode<S> {
    /// The index of the last entry in the node's log, persisted or not.
    pub fn log_last_index(&self) -> LogIndex {
        self.raft.log.last_index()
    }

    /// The entry at `index` in the node's log, persisted or not; `None` if it was
    /// compacted away or does not exist.
    pub fn log_entry(&self, index: LogIndex) -> Option<Entry> {
        let entries = self
            .raft
            .log
            .entries(index, index.saturating_add(1), u64::MAX, 1)
            .ok()?;
        entries.into_iter().next()
    }
}
