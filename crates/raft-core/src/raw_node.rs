//! `RawNode`: the API a driver uses. Inputs go in through `tick`, `step`, `propose`,
//! `read_index` and `transfer_leader`; effects come out in a [`Ready`] (assembled in
//! `ready.rs`), whose completions come back through `advance` or the asynchronous
//! `on_*` reports.

use bytes::Bytes;

use crate::config::Config;
use crate::entry::{Entry, Snapshot};
use crate::error::Result;
use crate::membership::MembershipChange;
use crate::message::Message;
use crate::planted_bugs::PlantedBugs;
use crate::raft::Raft;
use crate::ready::{Handout, Ready};
use crate::status::{self, Status};
use crate::storage::Storage;
use crate::types::{HardState, LogIndex, NodeId, Role, Term};

/// A Raft node without IO: the driver calls it and carries out its [`Ready`]s.
///
/// Call [`RawNode::ready`] and [`RawNode::advance`] strictly in turn: after a `ready`,
/// the next call of `ready` must follow an `advance`.
pub struct RawNode<S> {
    raft: Raft<S>,
    handout: Handout,
}

impl<S: Storage> RawNode<S> {
    /// Creates a node, or restarts one from what `storage` persisted.
    pub fn new(config: Config, storage: S) -> Result<Self> {
        let raft = Raft::new(config, storage)?;
        Ok(RawNode {
            handout: Handout::new(&raft),
            raft,
        })
    }

    /// Caps the committed entries handed out for applying but not yet reported
    /// applied ([`RawNode::applied_to`]): a driver that applies asynchronously keeps
    /// its apply queue bounded with it. Unlimited by default.
    pub fn set_max_unapplied(&mut self, entries: u64) {
        self.handout.max_unapplied = entries.max(1);
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
        self.raft.wake();
        let pre = self.raft.cfg.pre_vote;
        if self.raft.role != Role::Leader {
            self.raft.campaign(pre, false);
        }
    }

    /// Proposes a command. On the leader it is appended to the log and its
    /// `(term, index)` returned: it was applied as proposed if the entry applied at that
    /// index has that term. Elsewhere: `Error::NotLeader` with a hint.
    pub fn propose(&mut self, command: Bytes) -> Result<(Term, LogIndex)> {
        self.raft.wake();
        self.raft.propose(vec![command])
    }

    /// Proposes several commands at once; returns the term and the index of the last.
    pub fn propose_batch(&mut self, commands: Vec<Bytes>) -> Result<(Term, LogIndex)> {
        self.raft.wake();
        self.raft.propose(commands)
    }

    /// Asks for a linearizable read. The answer comes out as a [`crate::ReadState`] with
    /// the same `context` in a later Ready (if leadership is lost meanwhile, never: the
    /// caller retries after a timeout).
    pub fn read_index(&mut self, context: Bytes) -> Result<()> {
        self.raft.wake();
        self.raft.read_index(context)
    }

    /// Proposes a membership change (on the leader). Voter changes go through a joint
    /// configuration that the leader leaves by itself once it commits; learner-only
    /// changes take one entry. Returns the term and index of the configuration entry.
    /// Refused while another change is in flight.
    pub fn propose_membership_change(&mut self, changes: &[MembershipChange]) -> Result<(Term, LogIndex)> {
        self.raft.wake();
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
        self.raft.wake();
        self.raft.transfer_leader(to)
    }

    /// With [`Config::quiesce`]: leaves quiescence, for a host that suspects the
    /// leader (or, on the leader, a follower) is gone because it has not heard that
    /// node's liveness beat for an election timeout. A follower restarts its election
    /// timer (it campaigns after a randomized election timeout unless a leader speaks
    /// up); a leader heartbeats at once and starts a new check-quorum window. A no-op
    /// on a node that is not quiesced. Proposals, reads, membership changes,
    /// transfers, `campaign` and every message but `Quiesce` wake the node too.
    pub fn wake(&mut self) {
        self.raft.wake();
    }

    /// Whether the node is quiesced ([`Config::quiesce`]): its `tick` does nothing
    /// until it wakes, so the host may stop ticking it. Every change also shows in
    /// [`crate::SoftState::quiesced`] of the next Ready.
    pub fn is_quiesced(&self) -> bool {
        self.raft.quiesced
    }

    /// Whether [`RawNode::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        self.handout.has_ready(&self.raft)
    }

    /// Collects the work for the driver. See [`Ready`] for what to do with it.
    pub fn ready(&mut self) -> Ready {
        self.handout.ready(&mut self.raft)
    }

    /// Acknowledges the last Ready: its state is persisted, its messages sent, its
    /// committed entries applied.
    pub fn advance(&mut self) {
        self.handout.advance(&mut self.raft);
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
        self.handout.advance_async();
    }

    /// Asynchronous driver: the entries up to `index` (the last entry of a Ready,
    /// whose term was `term`) are durable. A stale report (the entry was overwritten
    /// since) is ignored.
    pub fn on_persisted(&mut self, index: LogIndex, term: Term) {
        self.raft.on_persisted(index, term);
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
        Status::of(&self.raft)
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
        status::describe(&self.raft)
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
