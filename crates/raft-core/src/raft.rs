//! The protocol state of one node and the single place that dispatches on its role.
//! The rules themselves live in `election.rs`, `replication.rs` and `read_only.rs`.

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::bounds::{self, MAX_INDEX};
use crate::config::Config;
use crate::entry::{Entry, EntryPayload};
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::membership::ConfigHistory;
use crate::message::{AppendResponse, Message, MessageBody, VoteResponse};
use crate::progress::{Tracker, Window};
use crate::read_queue::ReadOnly;
use crate::rng::Rng;
use crate::storage::Storage;
use crate::types::{HardState, LogIndex, NodeId, Role, SoftState, Term};
use crate::uncommitted::Uncommitted;

pub(crate) struct Raft<S> {
    pub(crate) id: NodeId,
    pub(crate) cfg: Config,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog<S>,
    pub(crate) tracker: Tracker,
    /// Messages that may leave at once.
    pub(crate) msgs: Vec<Message>,
    /// Messages that may leave only after the Ready they came with is persisted.
    pub(crate) msgs_after_persist: Vec<Message>,
    pub(crate) reads: ReadOnly,
    pub(crate) election_elapsed: u64,
    pub(crate) heartbeat_elapsed: u64,
    pub(crate) randomized_election_timeout: u64,
    pub(crate) rng: Rng,
    pub(crate) lead_transferee: Option<NodeId>,
    /// New entries were appended on the leader: broadcast them at the next Ready, so
    /// that all proposals between two Readys travel in one message per follower.
    pub(crate) pending_bcast: bool,
    /// Configuration entries in the log (a configuration takes effect when appended).
    pub(crate) configs: ConfigHistory,
    /// Logical time: ticks since this node started.
    pub(crate) ticks: u64,
    /// The snapshot the leader is currently sending to followers.
    pub(crate) snapshot_cache: Option<crate::storage::SnapshotInfo>,
    /// A snapshot a follower is receiving in chunks.
    pub(crate) incoming_snapshot: Option<crate::snapshot::Incoming>,
    /// Chunks received in order, for a driver that stages snapshots itself.
    pub(crate) snapshot_chunks_out: Vec<crate::message::SnapshotChunk>,
    /// This leader sent TimeoutNow in its term: another node may have been elected
    /// without waiting for an election timeout, so its lease can no longer be trusted.
    pub(crate) timeout_now_sent: bool,
    /// With lease reads, a node that restarts from persisted state ignores vote
    /// requests until this tick: before the crash it may have acknowledged a leader
    /// whose lease counts on it not voting within an election timeout, and it no
    /// longer remembers that leader.
    pub(crate) restart_quiet_until: u64,
    /// The tick this node's term last changed: the longer ago, the higher the terms it
    /// accepts (`bounds::term_limit`).
    pub(crate) term_start_tick: u64,
    /// On the leader: the proposals appended in its term and not committed yet.
    pub(crate) uncommitted: Uncommitted,
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
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            reads: ReadOnly::default(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: cfg.election_tick,
            rng: Rng::new(cfg.seed),
            lead_transferee: None,
            pending_bcast: false,
            configs,
            ticks: 0,
            snapshot_cache: None,
            incoming_snapshot: None,
            snapshot_chunks_out: Vec::new(),
            timeout_now_sent: false,
            restart_quiet_until: if cfg.read_lease_ticks.is_some() && init.hard_state.term > 0 {
                cfg.election_tick
            } else {
                0
            },
            term_start_tick: 0,
            uncommitted: Uncommitted::default(),
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
        }
    }

    /// Whether this node may campaign: only voters can become leader.
    pub(crate) fn promotable(&self) -> bool {
        self.tracker.membership.is_voter(&self.id)
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

    pub(crate) fn tick(&mut self) {
        self.ticks += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Resets the timers and per-term volatile state for a new role.
    fn reset(&mut self, term: Term) {
        if self.term != term {
            self.term = term;
            self.vote = None;
            self.term_start_tick = self.ticks;
        }
        self.leader = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.randomized_election_timeout = self.rng.range(self.cfg.election_tick, 2 * self.cfg.election_tick);
        self.lead_transferee = None;
        self.tracker.votes.clear();
        self.reads.clear();
        self.pending_bcast = false;
        self.timeout_now_sent = false;
        self.uncommitted.reset();
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
        debug!(id = %self.id, term, leader = ?self.leader, "became follower");
    }

    pub(crate) fn become_pre_candidate(&mut self) {
        // §9.6: no term change and no vote; only the role and the tally.
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
        self.tracker
            .reset_progress(last.saturating_add(1), Window::of(&self.cfg));
        let persisted = self.log.persisted_index();
        if let Some(me) = self.tracker.progress.get_mut(&self.id) {
            me.match_index = persisted;
            me.become_replicate();
            me.recent_active = true;
        }
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

    /// Appends payloads to the leader's log with the current term; returns the index of
    /// the last one. The caller checked that they fit (`check_room`).
    pub(crate) fn append_entries(&mut self, payloads: Vec<EntryPayload>) -> LogIndex {
        let mut index = self.log.last_index();
        let entries: Vec<Entry> = payloads
            .into_iter()
            .map(|payload| {
                index += 1;
                Entry {
                    term: self.term,
                    index,
                    payload,
                }
            })
            .collect();
        self.log.append(&entries);
        self.on_log_appended(&entries);
        self.pending_bcast = true;
        index
    }

    pub(crate) fn propose(&mut self, data: Vec<Bytes>) -> Result<(Term, LogIndex)> {
        if self.role != Role::Leader {
            return Err(Error::NotLeader {
                leader_hint: self.leader.clone(),
            });
        }
        if let Some(to) = &self.lead_transferee {
            return Err(Error::LeadershipTransferInProgress { to: to.clone() });
        }
        self.check_room(data.len())?;
        let size = data
            .iter()
            .fold(0u64, |sum, d| sum.saturating_add(Entry::command_size(d)));
        self.uncommitted.admit(size, self.cfg.max_uncommitted_bytes)?;
        let last = self.append_entries(data.into_iter().map(EntryPayload::Command).collect());
        self.uncommitted.add(last, size);
        Ok((self.term, last))
    }

    /// The entry point for every message from the network.
    pub(crate) fn step(&mut self, m: Message) -> Result<()> {
        if m.to != self.id || m.group != self.cfg.group {
            return Err(Error::Misdelivered {
                to: m.to,
                group: m.group,
                local: self.id.clone(),
                local_group: self.cfg.group,
            });
        }
        if m.from == self.id {
            debug!(id = %self.id, "ignoring a message from itself");
            return Ok(());
        }
        // Before any rule sees it: no term or index that could overflow the protocol's
        // arithmetic or leave the cluster unable to elect (see `bounds`).
        if let Err(reason) = bounds::check_message(&m, self.term_limit()) {
            warn!(id = %self.id, msg = %m, %reason, "refusing a message");
            return Err(Error::Refused { from: m.from, reason });
        }
        if m.term > self.term {
            if !self.step_higher_term(&m) {
                return Ok(());
            }
        } else if m.term < self.term {
            self.step_lower_term(m);
            return Ok(());
        }
        match m.body {
            MessageBody::RequestVote(v) => self.handle_vote_request(m.from, m.term, v),
            body => match self.role {
                Role::Leader => self.step_leader(m.from, body),
                Role::Candidate | Role::PreCandidate => self.step_candidate(m.from, m.term, body),
                Role::Follower => self.step_follower(m.from, body),
            },
        }
        // Normally configurations change exactly when the log does; only the planted
        // bug that lets them take effect on commit needs a refresh after every step.
        if self.cfg.bugs.apply_config_on_commit {
            self.refresh_membership();
        }
        Ok(())
    }

    /// The highest term this node accepts from a message now.
    pub(crate) fn term_limit(&self) -> Term {
        let in_term = self.ticks.saturating_sub(self.term_start_tick) / self.cfg.election_tick.max(1);
        bounds::term_limit(self.term, in_term)
    }

    /// A message from a newer term. Returns false if the message is to be ignored.
    fn step_higher_term(&mut self, m: &Message) -> bool {
        match &m.body {
            MessageBody::RequestVote(v) => {
                // §6 / dissertation §4.2.3: a node that heard from a leader within the
                // minimum election timeout ignores vote requests, so a removed or
                // partitioned server cannot depose a healthy leader.
                let in_lease = self.cfg.check_quorum
                    && ((self.leader.is_some() && self.election_elapsed < self.cfg.election_tick)
                        || self.ticks < self.restart_quiet_until);
                if in_lease && !v.leadership_transfer {
                    debug!(id = %self.id, from = %m.from, "ignoring vote request within leader lease");
                    return false;
                }
                if !v.pre_vote {
                    self.become_follower(m.term, None);
                }
            }
            // A granted pre-vote carries the future term; nothing changes yet.
            MessageBody::RequestVoteResponse(VoteResponse {
                pre_vote: true,
                granted: true,
            }) => {}
            MessageBody::AppendEntries(_) | MessageBody::Heartbeat(_) | MessageBody::InstallSnapshot(_) => {
                self.become_follower(m.term, Some(m.from.clone()));
            }
            _ => self.become_follower(m.term, None),
        }
        true
    }

    /// A message from an older term.
    fn step_lower_term(&mut self, m: Message) {
        match m.body {
            MessageBody::AppendEntries(_) | MessageBody::Heartbeat(_) | MessageBody::InstallSnapshot(_)
                if self.cfg.check_quorum || self.cfg.pre_vote || !self.promotable() =>
            {
                // A stale leader that cannot hear the new leader would otherwise never
                // learn the new term (pre-vote stops us from bumping it ourselves, and
                // a node that cannot campaign never would).
                self.send(
                    m.from,
                    self.term,
                    MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm),
                );
            }
            MessageBody::RequestVote(v) if v.pre_vote => {
                self.send(
                    m.from,
                    self.term,
                    MessageBody::RequestVoteResponse(VoteResponse {
                        pre_vote: true,
                        granted: false,
                    }),
                );
            }
            _ => debug!(id = %self.id, msg = %m, "ignoring a message from an older term"),
        }
    }

    fn step_follower(&mut self, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::AppendEntries(a) => {
                self.election_elapsed = 0;
                self.leader = Some(from.clone());
                self.handle_append(from, a);
            }
            MessageBody::Heartbeat(h) => {
                self.election_elapsed = 0;
                self.leader = Some(from.clone());
                self.handle_heartbeat(from, h);
            }
            MessageBody::InstallSnapshot(s) => {
                self.election_elapsed = 0;
                self.leader = Some(from.clone());
                self.handle_snapshot(from, s);
            }
            MessageBody::TimeoutNow => {
                if self.promotable() {
                    info!(id = %self.id, term = self.term, "leadership transferred to us; campaigning");
                    self.campaign(false, true);
                }
            }
            MessageBody::ReadIndexResponse(r) => self.reads.push_ready(r.context, r.index),
            other => debug!(id = %self.id, kind = other.kind(), "follower ignores message"),
        }
    }

    fn step_candidate(&mut self, from: NodeId, term: Term, body: MessageBody) {
        match body {
            // §5.2: a leader of our term exists; return to follower and obey it.
            MessageBody::AppendEntries(_) | MessageBody::Heartbeat(_) | MessageBody::InstallSnapshot(_) => {
                self.become_follower(term, Some(from.clone()));
                self.step_follower(from, body);
            }
            MessageBody::RequestVoteResponse(r) => self.handle_vote_response(from, r),
            other => debug!(id = %self.id, kind = other.kind(), "candidate ignores message"),
        }
    }

    fn step_leader(&mut self, from: NodeId, body: MessageBody) {
        if let Some(p) = self.tracker.progress.get_mut(&from) {
            p.recent_active = true;
        } else {
            debug!(id = %self.id, %from, "leader ignores a message from a non-member");
            return;
        }
        match body {
            MessageBody::AppendEntriesResponse(r) => self.handle_append_response(from, r),
            MessageBody::HeartbeatResponse(h) => self.handle_heartbeat_response(from, h),
            MessageBody::InstallSnapshotResponse(s) => self.handle_snapshot_response(from, s),
            MessageBody::ReadIndex(r) => self.leader_read(r.context, Some(from)),
            other => debug!(id = %self.id, kind = other.kind(), "leader ignores message"),
        }
    }

    pub(crate) fn transfer_leader(&mut self, to: NodeId) -> Result<()> {
        if self.role != Role::Leader {
            return Err(Error::NotLeader {
                leader_hint: self.leader.clone(),
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !self.tracker.membership.is_voter(&to) {
            return Err(Error::UnknownNode(to));
        }
        if self.lead_transferee.as_ref() == Some(&to) {
            return Ok(());
        }
        info!(id = %self.id, term = self.term, %to, "transferring leadership");
        self.lead_transferee = Some(to.clone());
        // The transfer must finish within one election timeout or it is abandoned.
        self.election_elapsed = 0;
        let caught_up = self.tracker.progress.get(&to).map(|p| p.match_index) == Some(self.log.last_index());
        if caught_up {
            self.send_timeout_now(to);
        } else {
            self.send_append(&to, true);
        }
        Ok(())
    }

    pub(crate) fn send_timeout_now(&mut self, to: NodeId) {
        self.timeout_now_sent = true;
        self.send(to, self.term, MessageBody::TimeoutNow);
    }

    /// Called after the driver persisted entries up to `index` of `term`.
    pub(crate) fn on_persisted(&mut self, index: LogIndex, term: Term) {
        if self.role != Role::Leader || term != self.term {
            return;
        }
        let id = self.id.clone();
        let updated = self
            .tracker
            .progress
            .get_mut(&id)
            .is_some_and(|p| p.maybe_update(index));
        if updated && self.maybe_commit() {
            self.pending_bcast = true;
        }
    }

    /// Work deferred to the Ready boundary so that it is batched.
    pub(crate) fn flush(&mut self) {
        if self.role == Role::Leader {
            if self.pending_bcast {
                self.pending_bcast = false;
                self.bcast_append();
            }
            if self.reads.take_round_pending() {
                self.bcast_heartbeat();
            }
        }
    }

    pub(crate) fn has_pending_flush(&self) -> bool {
        self.role == Role::Leader && (self.pending_bcast || self.reads.round_pending())
    }
}
