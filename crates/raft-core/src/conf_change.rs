//! Driving membership changes: configuration entries take effect when appended,
//! are undone when truncated, and the leader leaves a joint configuration (and steps
//! down if it removed itself) once it commits.

use tracing::{error, info};

use crate::entry::{Entry, EntryPayload};
use crate::error::{Error, Result, StorageError};
use crate::log::RaftLog;
use crate::membership::{apply_changes, ConfigHistory, MembershipChange, MembershipError};
use crate::progress::Window;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{LogIndex, Membership, Term};

impl<S: Storage> Raft<S> {
    /// Rebuilds the configuration history from the snapshot's membership and the
    /// configuration entries in the log (on start and restart).
    pub(crate) fn scan_configs(log: &RaftLog<S>, base: Membership) -> Result<ConfigHistory, StorageError> {
        let first = log.first_index();
        let last = log.last_index();
        let mut history = ConfigHistory::new(first - 1, base);
        let mut next = first;
        while next <= last {
            let batch = log.entries(next, last + 1, u64::MAX, 4096)?;
            let Some(tail) = batch.last() else { break };
            next = tail.index + 1;
            for e in batch {
                if let EntryPayload::Membership(m) = e.payload {
                    history.push(e.index, m);
                }
            }
        }
        Ok(history)
    }

    /// Entries were appended to the log (possibly replacing a suffix): configuration
    /// entries among them take effect now, and replaced ones are undone.
    pub(crate) fn on_log_appended(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        self.configs.truncate_from(first.index);
        for e in entries {
            if let EntryPayload::Membership(m) = &e.payload {
                self.configs.push(e.index, m.clone());
            }
        }
        self.refresh_membership();
    }

    /// Makes the tracker (and a leader's progress) follow the configuration in effect.
    pub(crate) fn refresh_membership(&mut self) {
        let wanted = if self.cfg.bugs.apply_config_on_commit {
            self.configs.at(self.log.committed)
        } else {
            self.configs.latest().1
        };
        if *wanted != self.tracker.membership {
            let wanted = wanted.clone();
            info!(
                id = %self.id,
                voters = ?wanted.voters,
                outgoing = ?wanted.voters_outgoing,
                learners = ?wanted.learners,
                "configuration changed"
            );
            if let Some(leader) = self.leader_state.as_mut() {
                let next = self.log.last_index() + 1;
                leader.follow_membership(&wanted, next, Window::of(&self.cfg));
            }
            self.tracker.membership = wanted;
        }
    }

    /// The leader proposes a membership change: a joint configuration when voters
    /// change (the leader leaves it automatically once it commits), a simple one when
    /// only learners change.
    pub(crate) fn propose_membership_change(&mut self, changes: &[MembershipChange]) -> Result<(Term, LogIndex)> {
        let Some(leader) = &self.leader_state else {
            return Err(self.not_leader());
        };
        if let Some(to) = &leader.lead_transferee {
            return Err(Error::LeadershipTransferInProgress { to: to.clone() });
        }
        let skip_joint = self.cfg.bugs.skip_joint_consensus;
        let (latest_index, current) = self.configs.latest();
        let current = current.clone();
        // Dissertation §4.1: one change at a time. The previous one must be committed,
        // and a joint configuration must have been left.
        if !skip_joint && (latest_index > self.log.committed || current.is_joint()) {
            return Err(MembershipError::ChangeInProgress { index: latest_index }.into());
        }
        let target = apply_changes(&current, changes)?;
        let entry = if target.voters == current.voters || skip_joint {
            target
        } else {
            Membership {
                voters: target.voters,
                voters_outgoing: current.voters.clone(),
                learners: target.learners,
            }
        };
        self.check_room(1)?;
        info!(id = %self.id, changes = ?changes, "proposing membership change");
        let index = self.append_entries(vec![EntryPayload::Membership(entry)]);
        Ok((self.term, index))
    }

    /// After the commit index moved on the leader: leave a committed joint
    /// configuration, and step down once a configuration without us is committed.
    pub(crate) fn after_commit(&mut self) {
        self.refresh_membership();
        if self.leader_state.is_none() {
            return;
        }
        let (latest_index, current) = self.configs.latest();
        if latest_index > self.log.committed {
            return;
        }
        if current.is_joint() {
            let leave = Membership {
                voters: current.voters.clone(),
                voters_outgoing: Default::default(),
                learners: current.learners.clone(),
            };
            if let Err(e) = self.check_room(1) {
                error!(id = %self.id, %e, "cannot leave the joint configuration");
                return;
            }
            info!(id = %self.id, "joint configuration committed; leaving it");
            self.append_entries(vec![EntryPayload::Membership(leave)]);
        } else if !current.is_voter(&self.id) {
            info!(id = %self.id, term = self.term, "removed from the configuration; stepping down");
            let term = self.term;
            self.become_follower(term, None);
        }
    }
}
