//! The protocol state of one node and its changes of role. Inputs are dispatched on
//! the role in `step.rs`; the rules themselves live in `election.rs`,
//! `replication.rs`, `proposal.rs`, `transfer.rs`, `read_only.rs`, `snapshot.rs` and
//! `conf_change.rs`.

use tracing::{debug, info};

use crate::bounds::MAX_INDEX;
use crate::config::Config;
use crate::entry::EntryPayload;
use crate::error::{Error, Result};
use crate::incoming_snapshot::IncomingSnapshot;
use crate::leader::LeaderState;
use crate::log::RaftLog;
use crate::membership::ConfigHistory;
use crate::message::{Message, MessageBody, SnapshotChunk};
use crate::progress::{Progress, Window};
use crate::read_queue::ReadOnly;
use crate::rng::Rng;
use crate::storage::Storage;
use crate::tracker::Tracker;
use crate::types::{HardState, NodeId, Role, SoftState, Term};

/// One node's protocol state.
pub(crate) struct Raft<S> {
    /// This node.
    pub(crate) id: NodeId,
    pub(crate) cfg: Config,
    /// The current term (persisted in the hard state).
    pub(crate) term: Term,
    /// The candidate voted for in `term`, if any (persisted in the hard state).
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    /// The leader of `term` this node knows of.
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog<S>,
    /// The membership in effect (in every role) and the votes of an election.
    pub(crate) tracker: Tracker,
    /// What only a leader keeps: `Some` exactly while `role` is `Role::Leader`.
    pub(crate) leader_state: Option<LeaderState>,
    /// Messages that may leave at once.
    pub(crate) msgs: Vec<Message>,
    /// Messages that may leave only after the Ready they came with is persisted.
    pub(crate) msgs_after_persist: Vec<Message>,
    /// ReadIndex reads: the leader's queue and the reads released to the driver.
    pub(crate) reads: ReadOnly,
    /// Ticks since the last reset of the election timer (a leader heard, a vote
    /// granted, a role change); a leader counts its check-quorum rounds with it.
    pub(crate) election_elapsed: u64,
    /// This term's election timeout, drawn from `[election_tick, 2 * election_tick)`.
    pub(crate) randomized_election_timeout: u64,
    /// The seeded source of the randomized timeouts.
    pub(crate) rng: Rng,
    /// Configuration entries in the log (a configuration takes effect when appended).
    pub(crate) configs: ConfigHistory,
    /// Logical time: ticks since this node started.
    pub(crate) ticks: u64,
    /// A snapshot a follower is receiving in chunks.
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
    /// Chunks received in order, for a driver that stages snapshots itself.
    pub(crate) snapshot_chunks_out: Vec<SnapshotChunk>,
    /// With lease reads, a node that restarts from persisted state ignores vote
    /// requests until this tick: before the crash it may have acknowledged a leader
    /// whose lease counts on it not voting within an election timeout, and it no
    /// longer remembers that leader.
    pub(crate) restart_quiet_until: u64,
    /// The tick this node's term last changed: the longer ago, the higher the terms it
    /// accepts (`bounds::term_limit`).
    pub(crate) term_start_tick: u64,
    /// With `Config::quiesce`: the node is quiesced, its timers stopped until an
    /// input wakes it (`quiesce.rs`).
    pub(crate) quiesced: bool,
    /// The `Quiesce` this node obeyed while it is quiesced as a follower: late
    /// messages it already covers do not wake the node.
    pub(crate) quiesced_at: Option<crate::message::Quiesce>,
    /// The leader's count of awake ticks in a row its group was idle.
    pub(crate) idle_ticks: u64,
}

impl<S: Storage> Raft<S> {
    pub(crate) fn new(cfg: Config, store: S) -> Result<Self> {
        cfg.validate()?;
        let init = store.initial_state()?;
        let log = RaftLog::new(store, init.hard_state.commit, cfg.applied)?;
        let configs = Self::scan_configs(&log, init.membership.clone())?;
        let mut r = Raft {
            id: cfg.id.clone(),
            term: init.hard_state.term,
            vote: init.hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            tracker: Tracker::new(init.membership),
            leader_state: None,
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            reads: ReadOnly::default(),
            election_elapsed: 0,
            randomized_election_timeout: cfg.election_tick,
            rng: Rng::new(cfg.seed),
            configs,
            ticks: 0,
            incoming_snapshot: None,
            snapshot_chunks_out: Vec::new(),
            restart_quiet_until: if cfg.read_lease_ticks.is_some() && init.hard_state.term > 0 {
                cfg.election_tick
            } else {
                0
            },
            term_start_tick: 0,
            quiesced: false,
            quiesced_at: None,
            idle_ticks: 0,
            cfg,
        };
        r.refresh_membership();
        let term = r.term;
        r.become_follower(term, None);
        Ok(r)
    }

    pub(crate) fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote.clone(),
            commit: self.log.committed,
        }
    }

    pub(crate) fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader.clone(),
            term: self.term,
            quiesced: self.quiesced,
        }
    }

    /// Whether this node may campaign: only voters can become leader.
    pub(crate) fn promotable(&self) -> bool {
        self.tracker.membership.is_voter(&self.id)
    }

    /// The refusal of a request only a leader serves.
    pub(crate) fn not_leader(&self) -> Error {
        Error::NotLeader {
            leader_hint: self.leader.clone(),
        }
    }

    /// The leader's progress for member `id`; `None` if this node does not lead or
    /// `id` is not a member.
    pub(crate) fn progress(&self, id: &NodeId) -> Option<&Progress> {
        self.leader_state.as_ref()?.progress.get(id)
    }

    /// The leader's progress for member `id`, to change it (see [`Raft::progress`]).
    pub(crate) fn progress_mut(&mut self, id: &NodeId) -> Option<&mut Progress> {
        self.leader_state.as_mut()?.progress.get_mut(id)
    }

    /// Queues a message that may leave at once.
    pub(crate) fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let m = self.message(to, term, body);
        self.msgs.push(m);
    }

    /// Queues a message that may leave only once this Ready is persisted.
    pub(crate) fn send_after_persist(&mut self, to: NodeId, body: MessageBody) {
        let m = self.message(to, self.term, body);
        self.msgs_after_persist.push(m);
    }

    fn message(&self, to: NodeId, term: Term, body: MessageBody) -> Message {
        Message {
            group: self.cfg.group,
            from: self.id.clone(),
            to,
            term,
            body,
        }
    }

    /// Resets the timers and per-term volatile state for a new role; a leader's
    /// state goes with its role.
    fn reset(&mut self, term: Term) {
        if self.term != term {
            self.term = term;
            self.vote = None;
            self.term_start_tick = self.ticks;
        }
        self.leader = None;
        self.leader_state = None;
        self.quiesced = false;
        self.quiesced_at = None;
        self.idle_ticks = 0;
        self.election_elapsed = 0;
        self.randomized_election_timeout = self.rng.range(self.cfg.election_tick, 2 * self.cfg.election_tick);
        self.tracker.votes.clear();
        self.reads.clear();
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
        debug!(id = %self.id, term, leader = ?self.leader, "became follower");
    }

    pub(crate) fn become_pre_candidate(&mut self) {
        // §9.6: no term change and no vote; only the role and the tally (only a
        // follower or a candidate campaigns, so there is no leader state to drop).
        self.leader_state = None;
        self.tracker.votes.clear();
        self.leader = None;
        self.role = Role::PreCandidate;
        debug!(id = %self.id, term = self.term, "became pre-candidate");
    }

    /// Campaigns in `term`, which the caller computed as `self.term + 1` without
    /// overflow (see `campaign`).
    pub(crate) fn become_candidate(&mut self, term: Term) {
        self.reset(term);
        self.vote = Some(self.id.clone());
        self.role = Role::Candidate;
        info!(id = %self.id, term, "became candidate");
    }

    pub(crate) fn become_leader(&mut self) {
        let term = self.term;
        self.reset(term);
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        // `campaign` made sure the log has room for the no-op below.
        let last = self.log.last_index();
        self.leader_state = Some(LeaderState::new(
            &self.id,
            &self.tracker.membership,
            last.saturating_add(1),
            self.log.persisted_index(),
            Window::of(&self.cfg),
        ));
        // §8: a no-op entry of the new term lets the leader commit everything before it.
        self.append_entries(vec![EntryPayload::Noop]);
        info!(id = %self.id, term, last_index = last + 1, "became leader");
    }

    /// Whether the log has room for `n` more entries below [`MAX_INDEX`].
    pub(crate) fn check_room(&self, n: usize) -> Result<()> {
        let last_index = self.log.last_index();
        match last_index.checked_add(n as u64) {
            Some(last) if last <= MAX_INDEX => Ok(()),
            _ => Err(Error::LogFull { last_index }),
        }
    }
}
