//! The leader's writes: proposals appended to its log in its term (under the
//! uncommitted-bytes cap), its own persistence counted toward commitment, and the
//! broadcasts deferred to the Ready boundary, so that everything proposed between two
//! Readys travels in one message per follower.

use bytes::Bytes;

use crate::entry::{Entry, EntryPayload};
use crate::error::{Error, Result};
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{LogIndex, Term};

impl<S: Storage> Raft<S> {
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
        if let Some(leader) = self.leader_state.as_mut() {
            leader.pending_bcast = true;
        }
        index
    }

    pub(crate) fn propose(&mut self, data: Vec<Bytes>) -> Result<(Term, LogIndex)> {
        let Some(leader) = &self.leader_state else {
            return Err(self.not_leader());
        };
        if let Some(to) = &leader.lead_transferee {
            return Err(Error::LeadershipTransferInProgress { to: to.clone() });
        }
        self.check_room(data.len())?;
        let size = data
            .iter()
            .fold(0u64, |sum, d| sum.saturating_add(Entry::command_size(d)));
        leader.uncommitted.admit(size, self.cfg.max_uncommitted_bytes)?;
        let last = self.append_entries(data.into_iter().map(EntryPayload::Command).collect());
        // Appending never changes the role: still the leader.
        if let Some(leader) = self.leader_state.as_mut() {
            leader.uncommitted.add(last, size);
        }
        Ok((self.term, last))
    }

    /// The driver persisted the entries up to `index`, whose term was `term` (a stale
    /// report, for an entry overwritten since, changes nothing): they leave the
    /// unstable log, and on the leader its own copy counts toward commitment.
    pub(crate) fn on_persisted(&mut self, index: LogIndex, term: Term) {
        self.log.stable_to(index, term);
        if term != self.term {
            return;
        }
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let updated = leader.progress.get_mut(&self.id).is_some_and(|p| p.maybe_update(index));
        if updated && self.maybe_commit() {
            if let Some(leader) = self.leader_state.as_mut() {
                leader.pending_bcast = true;
            }
        }
    }

    /// Work deferred to the Ready boundary so that it is batched: the appends of the
    /// proposals since the last Ready, and the heartbeat round a read asked for.
    pub(crate) fn flush(&mut self) {
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        if std::mem::take(&mut leader.pending_bcast) {
            self.bcast_append();
        }
        if self.reads.take_round_pending() {
            self.bcast_heartbeat();
        }
    }

    pub(crate) fn has_pending_flush(&self) -> bool {
        self.leader_state
            .as_ref()
            .is_some_and(|leader| leader.pending_bcast || self.reads.round_pending())
    }
}
