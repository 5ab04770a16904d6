//! Leader election (§5.2), pre-vote (dissertation §9.6) and check-quorum (§6.2).

use tracing::{debug, error, info};

use crate::message::{MessageBody, VoteRequest, VoteResponse};
use crate::quorum::VoteResult;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{NodeId, Role, Term};

impl<S: Storage> Raft<S> {
    /// Followers and candidates: campaign when no leader was heard from for a
    /// randomized election timeout.
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.campaign(self.cfg.pre_vote, false);
        }
    }

    /// Leaders: heartbeats, check-quorum, and the deadline of a leadership transfer.
    pub(crate) fn tick_leader(&mut self) {
        if self.maybe_quiesce() {
            return;
        }
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        leader.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            if self.cfg.check_quorum {
                if !self.tracker.quorum_active(&leader.progress, &self.id) {
                    info!(id = %self.id, term = self.term, "lost contact with a quorum; stepping down");
                    let term = self.term;
                    self.become_follower(term, None);
                    return;
                }
                for (id, p) in leader.progress.iter_mut() {
                    p.recent_active = *id == self.id;
                }
            }
            if let Some(to) = leader.lead_transferee.take() {
                info!(id = %self.id, %to, "leadership transfer timed out; abandoned");
            }
        }
        let heartbeat_due = leader.heartbeat_elapsed >= self.cfg.heartbeat_tick;
        if heartbeat_due {
            leader.heartbeat_elapsed = 0;
        }
        self.retry_stalled_snapshots();
        if heartbeat_due {
            self.bcast_heartbeat();
        }
    }

    /// Starts a (pre-)election. `transfer` marks a campaign ordered by TimeoutNow,
    /// which skips pre-vote and overrides the voters' leader lease.
    pub(crate) fn campaign(&mut self, pre_vote: bool, transfer: bool) {
        if !self.promotable() {
            return;
        }
        // Only reachable after a peer pushed the term (or the log, with a snapshot) to
        // the end of its range: refuse to wrap, and stay a follower.
        let Some(next_term) = self.term.checked_add(1) else {
            error!(id = %self.id, term = self.term, "the term cannot grow any more; not campaigning");
            return;
        };
        if self.check_room(1).is_err() {
            error!(id = %self.id, last_index = self.log.last_index(), "the log is full; not campaigning");
            return;
        }
        let vote_term = if pre_vote {
            self.become_pre_candidate();
            next_term
        } else {
            self.become_candidate(next_term);
            next_term
        };
        let me = self.id.clone();
        if pre_vote {
            self.tracker.record_vote(me.clone(), true);
            if self.tally() == VoteResult::Won {
                // A single-voter cluster wins at once.
                self.on_won(pre_vote);
                return;
            }
        }
        // A real vote for ourselves counts only once it is durable
        // (`on_vote_persisted`): a leader whose own vote a crash could lose might,
        // after a restart, campaign in the same term again, win it a second time and
        // write different entries at the indexes it wrote the first time.
        let last_log_index = self.log.last_index();
        let last_log_term = self.log.last_term();
        let electorate = if self.cfg.bugs.count_learner_votes {
            // The planted bug: ask learners too (and `tally` counts them).
            self.tracker.membership.members()
        } else {
            self.tracker.membership.all_voters()
        };
        for to in electorate {
            if to == me {
                continue;
            }
            self.send(
                to,
                vote_term,
                MessageBody::RequestVote(VoteRequest {
                    pre_vote,
                    last_log_index,
                    last_log_term,
                    leadership_transfer: transfer,
                }),
            );
        }
    }

    /// The driver persisted a hard state of `term` with `vote`: a candidate's vote
    /// for itself now counts (a single-voter cluster wins here).
    pub(crate) fn on_vote_persisted(&mut self, term: Term, vote: Option<&NodeId>) {
        if self.role != Role::Candidate || self.term != term || vote != Some(&self.id) {
            return;
        }
        let me = self.id.clone();
        self.handle_vote_response(
            me,
            VoteResponse {
                pre_vote: false,
                granted: true,
            },
        );
    }

    fn tally(&self) -> VoteResult {
        self.tracker.tally(self.cfg.bugs.count_learner_votes)
    }

    fn on_won(&mut self, pre_vote: bool) {
        if pre_vote {
            self.campaign(false, false);
        } else {
            self.become_leader();
        }
    }

    /// §5.2 and §5.4.1: grant at most one vote per term, and only to a candidate whose
    /// log is at least as up to date as ours.
    pub(crate) fn handle_vote_request(&mut self, from: NodeId, term: Term, v: VoteRequest) {
        let can_vote = self.vote.as_ref() == Some(&from)
            || (self.vote.is_none() && self.leader.is_none())
            || (v.pre_vote && term > self.term)
            || self.cfg.bugs.vote_twice; // the planted bug: any request is granted
        let granted = can_vote && self.log.is_up_to_date(v.last_log_index, v.last_log_term);
        debug!(id = %self.id, %from, term, pre_vote = v.pre_vote, granted, "vote request");
        let resp = |granted| {
            MessageBody::RequestVoteResponse(VoteResponse {
                pre_vote: v.pre_vote,
                granted,
            })
        };
        if v.pre_vote {
            // A granted pre-vote answers in the term the candidate would use.
            let t = if granted { term } else { self.term };
            self.send(from, t, resp(granted));
            return;
        }
        if granted {
            self.election_elapsed = 0;
            self.vote = Some(from.clone());
            if self.cfg.bugs.vote_before_persist {
                self.send(from, self.term, resp(true));
                return;
            }
        }
        // The vote must be durable before the candidate can count it.
        self.send_after_persist(from, resp(granted));
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, r: VoteResponse) {
        if r.pre_vote != (self.role == Role::PreCandidate) {
            return;
        }
        self.tracker.record_vote(from, r.granted);
        match self.tally() {
            VoteResult::Won => {
                info!(id = %self.id, term = self.term, pre_vote = r.pre_vote, "won the election");
                self.on_won(r.pre_vote);
            }
            VoteResult::Lost => {
                debug!(id = %self.id, term = self.term, pre_vote = r.pre_vote, "lost the election");
                let term = self.term;
                self.become_follower(term, None);
            }
            VoteResult::Pending => {}
        }
    }
}
