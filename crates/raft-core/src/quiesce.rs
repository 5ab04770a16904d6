//! Quiescence (opt-in, `Config::quiesce`): an idle group stops its timers so that a
//! host with thousands of groups pays nothing per idle group. The leader of an idle
//! group tells its caught-up followers to quiesce with `MessageBody::Quiesce`; a
//! quiesced node ignores ticks until an input wakes it. The host replaces the
//! groups' heartbeats by one node-level liveness beat per peer pair and calls
//! `RawNode::wake` on a quiesced group whose leader went silent (see
//! `docs/raft-core.md`, "Quiescence").
//!
//! Quiescence touches only timers, never what is persisted, voted or committed, so
//! it can only cost liveness. Two things keep a lease read safe across it: a leader's
//! lease ends when it quiesces and again when it wakes (its first read after waking
//! takes a quorum round), and a follower that wakes restarts its election timer, so
//! it refuses votes for a whole election timeout as if it had just heard its leader.

use tracing::debug;

use crate::config::QUIESCE_IDLE_TICKS;
use crate::message::{HeartbeatResponse, MessageBody, Quiesce};
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{NodeId, Role};

impl<S: Storage> Raft<S> {
    /// The leader, at the start of each awake tick: counts the ticks the group has
    /// been idle and quiesces it after [`QUIESCE_IDLE_TICKS`]. Returns whether it did.
    pub(crate) fn maybe_quiesce(&mut self) -> bool {
        if !self.cfg.quiesce {
            return false;
        }
        if !self.group_idle() {
            self.idle_ticks = 0;
            return false;
        }
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        if self.idle_ticks < QUIESCE_IDLE_TICKS || !self.all_recently_active() {
            return false;
        }
        self.quiesce_group();
        true
    }

    /// Nothing left to do in the group: the whole log persisted here, committed, in
    /// this term, and matched by every member; no read, transfer, snapshot or joint
    /// configuration in progress, nothing waiting to be broadcast.
    fn group_idle(&self) -> bool {
        let Some(leader) = &self.leader_state else {
            return false;
        };
        let last = self.log.last_index();
        self.log.persisted_index() == last
            && self.log.committed == last
            && self.committed_in_current_term()
            && leader.lead_transferee.is_none()
            && !leader.pending_bcast
            && leader.uncommitted.bytes() == 0
            && !self.tracker.membership.is_joint()
            && self.reads.queue.is_empty()
            && self.reads.waiting_commit.is_empty()
            && !self.reads.round_pending()
            && leader
                .progress
                .values()
                .all(|p| p.match_index == last && !matches!(p.state, ProgressState::Snapshot { .. }))
    }

    /// Every member answered in the current check-quorum window: the leader does not
    /// quiesce towards a follower that may be gone.
    fn all_recently_active(&self) -> bool {
        self.leader_state
            .as_ref()
            .is_some_and(|l| l.progress.iter().all(|(id, p)| p.recent_active || *id == self.id))
    }

    /// Tells every follower to quiesce and stops this leader's timers.
    fn quiesce_group(&mut self) {
        let Some(leader) = &self.leader_state else {
            return;
        };
        let q = Quiesce {
            commit: self.log.committed,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            read_round: self.reads.round,
        };
        for to in leader.peers(&self.id) {
            self.send(to, self.term, MessageBody::Quiesce(q.clone()));
        }
        debug!(id = %self.id, term = self.term, commit = q.commit, "group idle; quiescing");
        self.enter_quiescence();
    }

    fn enter_quiescence(&mut self) {
        self.quiesced = true;
        self.idle_ticks = 0;
        // The lease counts ticks, and a quiesced node's ticks do not count.
        self.forget_lease();
    }

    /// A follower (or a candidate that just learned of the leader) handles the
    /// leader's `Quiesce`: it quiesces if its log equals the leader's and its commit
    /// index then equals the leader's; otherwise it stays awake and answers, which
    /// wakes the leader so that replication resumes.
    pub(crate) fn handle_quiesce(&mut self, from: NodeId, q: Quiesce) {
        // Only a voter can lead: a stranger's `Quiesce` (which the host's liveness
        // rule would never undo, the stranger not being its peer) is refused.
        let matches = self.cfg.quiesce
            && self.leader.as_ref() == Some(&from)
            && self.tracker.membership.is_voter(&from)
            && q.commit <= q.last_index
            && self.log.last_index() == q.last_index
            && self.log.last_term() == q.last_term;
        if matches {
            // Log Matching: our log equals the leader's up to `last_index`, so its
            // commit index is safe to adopt.
            self.log.commit_to(q.commit);
        }
        if matches && self.log.committed == q.commit && self.incoming_snapshot.is_none() {
            debug!(id = %self.id, leader = %from, commit = q.commit, "quiescing at the leader's request");
            self.enter_quiescence();
            self.quiesced_at = Some(q);
            return;
        }
        debug!(id = %self.id, leader = %from, "not caught up; refusing to quiesce");
        self.wake();
        // Read round 0 is never a real round: the answer only wakes the leader.
        self.send(
            from,
            self.term,
            MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: 0 }),
        );
    }

    /// Whether a quiesced node stays quiesced on `m`: the `Quiesce` itself (checked
    /// again by its handler), and messages of this term that were overtaken by the
    /// quiescence and carry nothing new. On the leader: acknowledgements (a heartbeat
    /// answer of a real round, an accepted append), since every member already
    /// matched its whole log. On a follower: its leader's heartbeats of rounds up to
    /// the one its `Quiesce` named and appends of nothing beyond that `Quiesce`'s log
    /// and commit. Without these exceptions the answers to the last heartbeat, if
    /// slower than the `Quiesce`, would undo every quiescence.
    pub(crate) fn stays_quiesced_on(&self, m: &crate::message::Message) -> bool {
        use crate::message::AppendResponse;
        if matches!(m.body, MessageBody::Quiesce(_)) {
            return true;
        }
        if m.term != self.term {
            return false;
        }
        if self.role == Role::Leader {
            return match &m.body {
                MessageBody::HeartbeatResponse(h) => h.read_round > 0,
                MessageBody::AppendEntriesResponse(AppendResponse::Accepted { .. }) => true,
                _ => false,
            };
        }
        let Some(q) = &self.quiesced_at else {
            return false;
        };
        if self.leader.as_ref() != Some(&m.from) {
            return false;
        }
        match &m.body {
            MessageBody::Heartbeat(h) => h.read_round <= q.read_round && h.commit <= q.commit,
            MessageBody::AppendEntries(a) => {
                let end = a.prev_log_index.saturating_add(a.entries.len() as u64);
                end <= q.last_index && a.commit <= q.commit
            }
            _ => false,
        }
    }

    /// Ends the lease: the next lease read needs a fresh quorum round.
    fn forget_lease(&mut self) {
        if !self.cfg.bugs.keep_lease_across_quiescence {
            self.reads.forget_round_times();
        }
    }

    /// Leaves quiescence (a no-op if not quiesced). A follower's election timer
    /// restarts; a leader starts a new check-quorum window (its marks of who answered
    /// are stale) and heartbeats at once so that its followers wake too. Either way
    /// a lease needs a fresh quorum round.
    pub(crate) fn wake(&mut self) {
        if !self.quiesced {
            return;
        }
        self.quiesced = false;
        self.quiesced_at = None;
        self.idle_ticks = 0;
        self.election_elapsed = 0;
        self.forget_lease();
        debug!(id = %self.id, term = self.term, role = %self.role, "waking");
        if self.role != Role::Leader {
            return;
        }
        let me = self.id.clone();
        if let Some(leader) = self.leader_state.as_mut() {
            leader.heartbeat_elapsed = 0;
            for (id, p) in leader.progress.iter_mut() {
                p.recent_active = *id == me;
            }
        }
        self.bcast_heartbeat();
    }
}
