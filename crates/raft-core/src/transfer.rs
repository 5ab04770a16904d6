//! Leadership transfer (dissertation §3.10): the leader brings the target up to date,
//! then tells it to campaign at once with TimeoutNow; proposals wait meanwhile, and a
//! transfer that does not finish within an election timeout is abandoned (in
//! `tick_leader`).

use tracing::info;

use crate::error::{Error, Result};
use crate::message::MessageBody;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::NodeId;

impl<S: Storage> Raft<S> {
    pub(crate) fn transfer_leader(&mut self, to: NodeId) -> Result<()> {
        let Some(leader) = self.leader_state.as_mut() else {
            return Err(self.not_leader());
        };
        if to == self.id {
            return Ok(());
        }
        if !self.tracker.membership.is_voter(&to) {
            return Err(Error::UnknownNode(to));
        }
        if leader.lead_transferee.as_ref() == Some(&to) {
            return Ok(());
        }
        info!(id = %self.id, term = self.term, %to, "transferring leadership");
        leader.lead_transferee = Some(to.clone());
        // The transfer must finish within one election timeout or it is abandoned.
        self.election_elapsed = 0;
        let caught_up = leader.progress.get(&to).map(|p| p.match_index) == Some(self.log.last_index());
        if caught_up {
            self.send_timeout_now(to);
        } else {
            self.send_append(&to, true);
        }
        Ok(())
    }

    /// The leader tells `to` to campaign now.
    pub(crate) fn send_timeout_now(&mut self, to: NodeId) {
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        leader.timeout_now_sent = true;
        self.send(to, self.term, MessageBody::TimeoutNow);
    }
}
