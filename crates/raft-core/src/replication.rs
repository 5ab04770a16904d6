//! Log replication (§5.3), commitment (§5.4.2) and snapshots sent to lagging
//! followers (§7), with per-follower flow control.

use tracing::{debug, info, warn};

use crate::message::{AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse, MessageBody};
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::NodeId;

impl<S: Storage> Raft<S> {
    pub(crate) fn bcast_append(&mut self) {
        let Some(leader) = &self.leader_state else {
            return;
        };
        for to in leader.peers(&self.id) {
            if self.send_append(&to, true) {
                // Pipelining: keep streaming while the window has room.
                while self.send_append(&to, false) {}
            }
        }
    }

    pub(crate) fn bcast_heartbeat(&mut self) {
        let Some(round) = self.start_round() else {
            return;
        };
        let Some(leader) = &self.leader_state else {
            return;
        };
        for to in leader.peers(&self.id) {
            let matched = self.progress(&to).map_or(0, |p| p.match_index);
            // Never tell a follower to commit beyond what it is known to hold.
            let commit = self.log.committed.min(matched);
            self.send(
                to,
                self.term,
                MessageBody::Heartbeat(Heartbeat {
                    commit,
                    read_round: round,
                }),
            );
        }
    }

    /// Sends the next AppendEntries to `to` if flow control allows. An empty message is
    /// sent only when `send_if_empty` (to carry the commit index or probe).
    /// Returns whether a message went out.
    pub(crate) fn send_append(&mut self, to: &NodeId, send_if_empty: bool) -> bool {
        let Some(p) = self.progress(to) else {
            return false;
        };
        if p.is_paused() {
            return false;
        }
        let next = p.next_index;
        let prev_log_index = next - 1;
        // In Replicate, a message carries at most the room left in the follower's byte
        // budget (and always at least one entry, so a large entry cannot stall it).
        let max_bytes = match p.state {
            ProgressState::Replicate => self.cfg.max_bytes_per_msg.min(p.inflights.room()),
            _ => self.cfg.max_bytes_per_msg,
        };
        let entries = self
            .log
            .entries(next, self.log.last_index() + 1, max_bytes, self.cfg.max_entries_per_msg);
        let (Some(prev_log_term), Ok(entries)) = (self.log.term(prev_log_index), entries) else {
            // The entries the follower needs were compacted away.
            return self.send_snapshot(to);
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let last = entries.last().map(|e| e.index);
        let bytes = entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.size()));
        if let Some(p) = self.progress_mut(to) {
            p.sent_entries(last, bytes);
        }
        let commit = self.log.committed;
        self.send(
            to.clone(),
            self.term,
            MessageBody::AppendEntries(AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                commit,
            }),
        );
        true
    }

    /// §5.3 (receiver side): accept entries only if our log matches at
    /// `prev_log_index`; otherwise reject with a hint for fast backtracking.
    pub(crate) fn handle_append(&mut self, from: NodeId, a: AppendRequest) {
        if !self.well_formed(&a) {
            warn!(id = %self.id, %from, prev = a.prev_log_index, n = a.entries.len(), "ignoring a malformed AppendEntries");
            return;
        }
        if a.prev_log_index < self.log.committed {
            // Everything up to our commit index is known to match the leader.
            let match_index = self.log.committed;
            self.send_after_persist(
                from,
                MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index }),
            );
            return;
        }
        let skip = self.cfg.bugs.skip_log_matching_check;
        let resp = match self
            .log
            .maybe_append(a.prev_log_index, a.prev_log_term, a.commit, &a.entries, skip)
        {
            Some((match_index, appended)) => {
                if let Some(start) = appended {
                    self.on_log_appended(&a.entries[start..]);
                }
                AppendResponse::Accepted { match_index }
            }
            None => {
                let hint = a.prev_log_index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(hint, a.prev_log_term);
                debug!(id = %self.id, %from, rejected = a.prev_log_index, hint_index, hint_term, "rejecting append");
                AppendResponse::Rejected {
                    rejected_index: a.prev_log_index,
                    hint_index,
                    hint_term,
                }
            }
        };
        // The ack promises the entries are durable: it leaves after they are persisted.
        self.send_after_persist(from, MessageBody::AppendEntriesResponse(resp));
    }

    /// Entries must follow `prev_log_index` contiguously, with terms that never
    /// decrease and never exceed the sender's term.
    fn well_formed(&self, a: &AppendRequest) -> bool {
        let mut prev_term = a.prev_log_term;
        for (i, e) in a.entries.iter().enumerate() {
            if Some(e.index) != a.prev_log_index.checked_add(i as u64 + 1) || e.term < prev_term || e.term > self.term {
                return false;
            }
            prev_term = e.term;
        }
        true
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, h: Heartbeat) {
        self.log.commit_to(h.commit);
        self.send(
            from,
            self.term,
            MessageBody::HeartbeatResponse(HeartbeatResponse {
                read_round: h.read_round,
            }),
        );
    }

    pub(crate) fn handle_append_response(&mut self, from: NodeId, r: AppendResponse) {
        match r {
            AppendResponse::Accepted { match_index } => {
                if match_index > self.log.last_index() {
                    warn!(id = %self.id, %from, match_index, "ignoring an ack beyond our log");
                    return;
                }
                let Some(p) = self.progress_mut(&from) else {
                    return;
                };
                if !p.maybe_update(match_index) {
                    return;
                }
                match p.state {
                    ProgressState::Probe => p.become_replicate(),
                    ProgressState::Snapshot { pending } if p.match_index >= pending => {
                        p.become_probe();
                        p.become_replicate();
                    }
                    ProgressState::Replicate => p.inflights.free_to(match_index),
                    ProgressState::Snapshot { .. } => {}
                }
                if self.maybe_commit() {
                    self.bcast_append();
                } else {
                    while self.send_append(&from, false) {}
                }
                let transferee = self.leader_state.as_ref().and_then(|l| l.lead_transferee.as_ref());
                if transferee == Some(&from) && match_index == self.log.last_index() {
                    info!(id = %self.id, to = %from, "transfer target caught up; sending TimeoutNow");
                    self.send_timeout_now(from);
                }
            }
            AppendResponse::Rejected {
                rejected_index,
                hint_index,
                hint_term,
            } => {
                // Fast backtracking: skip every entry of a term the follower cannot have.
                let next_probe = if hint_term > 0 {
                    self.log.find_conflict_by_term(hint_index, hint_term).0
                } else {
                    hint_index
                };
                let Some(p) = self.progress_mut(&from) else {
                    return;
                };
                if p.maybe_decr_to(rejected_index, next_probe) {
                    if p.state == ProgressState::Replicate {
                        p.become_probe();
                    }
                    self.send_append(&from, true);
                }
            }
            AppendResponse::StaleTerm => {}
        }
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, h: HeartbeatResponse) {
        let last = self.log.last_index();
        let Some(p) = self.progress_mut(&from) else {
            return;
        };
        p.read_round = p.read_round.max(h.read_round);
        p.probe_sent = false;
        if p.state == ProgressState::Replicate && p.inflights.full() {
            p.inflights.free_first();
        }
        if p.match_index < last {
            self.send_append(&from, true);
        }
        self.release_confirmed_reads();
    }

    /// §5.3/§5.4.2: commit the highest index a quorum holds, but only by counting
    /// replicas of an entry of the current term (Figure 8).
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let Some(leader) = self.leader_state.as_mut() else {
            return false;
        };
        let mci = self.tracker.committed_index(&leader.progress);
        if mci <= self.log.committed {
            return false;
        }
        let current_term = self.log.term(mci) == Some(self.term) || self.cfg.bugs.commit_previous_term_by_counting;
        if !current_term {
            return false;
        }
        leader.uncommitted.committed_to(mci);
        let first_of_term = !self.committed_in_current_term();
        self.log.commit_to(mci);
        if first_of_term {
            self.on_first_commit_of_term();
        }
        self.after_commit();
        true
    }

    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }
}
