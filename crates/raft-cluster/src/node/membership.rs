//! Membership changes on the node task: proposed through the core, answered once
//! their final (non-joint) configuration is applied.

use raft_core::{EntryPayload, LogIndex, MembershipChange, Term};
use raft_storage::LogStore;

use super::{NodeTask, PendingConf, Reply};
use crate::error::Error;
use crate::state_machine::StateMachine;
use crate::transport::Transport;

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Proposes a membership change; the caller hears once it is applied.
    pub(super) fn change_membership(&mut self, changes: &[MembershipChange], reply: Reply<()>) {
        match self.raw.propose_membership_change(changes) {
            Ok((term, index)) => self.conf_changes.push(PendingConf {
                index,
                term,
                reply,
                appended: false,
            }),
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Membership requests resolve once their final (non-joint) configuration applies.
    pub(super) fn on_conf_applied(&mut self, index: LogIndex, term: Term, payload: &EntryPayload) {
        let final_config = matches!(payload, EntryPayload::Membership(m) if !m.is_joint());
        let mut i = 0;
        while i < self.conf_changes.len() {
            let c = &mut self.conf_changes[i];
            if c.index == index {
                if c.term != term || !matches!(payload, EntryPayload::Membership(_)) {
                    let c = self.conf_changes.remove(i);
                    let _ = c.reply.send(Err(Error::ProposalDropped));
                    continue;
                }
                c.appended = true;
            }
            if c.appended && final_config && c.index <= index {
                let c = self.conf_changes.remove(i);
                let _ = c.reply.send(Ok(()));
                continue;
            }
            i += 1;
        }
    }
}
