//! The single place that dispatches on the role: every tick and every message from
//! the network enters here, passes the checks that hold in all roles (address,
//! bounds, terms: Figure 2's "all servers" rules) and goes to the role's handler.

use tracing::{debug, info, warn};

use crate::bounds;
use crate::error::{Error, Result};
use crate::message::{AppendResponse, Message, MessageBody, VoteResponse};
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{NodeId, Role, Term};

impl<S: Storage> Raft<S> {
    /// Advances logical time by one tick.
    pub(crate) fn tick(&mut self) {
        debug_assert_eq!(self.leader_state.is_some(), self.role == Role::Leader);
        self.ticks += 1;
        if self.quiesced {
            // Quiescence: no timer runs and nothing is sent until an input wakes us.
            return;
        }
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
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
        // Any message of the group wakes a quiesced node, except the request to
        // quiesce itself (which re-checks whether the node may stay quiesced) and
        // late messages that tell it nothing new (`quiesce.rs`).
        if self.quiesced && !self.stays_quiesced_on(&m) {
            self.wake();
        }
        if m.term > self.term {
            if !self.step_higher_term(&m) {
                return Ok(());
            }
        } else if m.term < self.term {
            self.step_lower_term(m);
            return Ok(());
        }
        debug_assert_eq!(self.leader_state.is_some(), self.role == Role::Leader);
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
            MessageBody::AppendEntries(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::InstallSnapshot(_)
            | MessageBody::Quiesce(_) => {
                self.become_follower(m.term, Some(m.from.clone()));
            }
            _ => self.become_follower(m.term, None),
        }
        true
    }

    /// A message from an older term.
    fn step_lower_term(&mut self, m: Message) {
        match m.body {
            MessageBody::AppendEntries(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::InstallSnapshot(_)
            | MessageBody::Quiesce(_)
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
            MessageBody::Quiesce(q) => {
                // Only the leader of this term sends it: it counts as hearing from it.
                self.election_elapsed = 0;
                self.leader = Some(from.clone());
                self.handle_quiesce(from, q);
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
            MessageBody::AppendEntries(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::InstallSnapshot(_)
            | MessageBody::Quiesce(_) => {
                self.become_follower(term, Some(from.clone()));
                self.step_follower(from, body);
            }
            MessageBody::RequestVoteResponse(r) => self.handle_vote_response(from, r),
            other => debug!(id = %self.id, kind = other.kind(), "candidate ignores message"),
        }
    }

    fn step_leader(&mut self, from: NodeId, body: MessageBody) {
        let Some(p) = self.progress_mut(&from) else {
            debug!(id = %self.id, %from, "leader ignores a message from a non-member");
            return;
        };
        p.recent_active = true;
        match body {
            MessageBody::AppendEntriesResponse(r) => self.handle_append_response(from, r),
            MessageBody::HeartbeatResponse(h) => self.handle_heartbeat_response(from, h),
            MessageBody::InstallSnapshotResponse(s) => self.handle_snapshot_response(from, s),
            MessageBody::ReadIndex(r) => self.leader_read(r.context, Some(from)),
            other => debug!(id = %self.id, kind = other.kind(), "leader ignores message"),
        }
    }
}
