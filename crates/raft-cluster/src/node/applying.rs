//! The hand-off to the apply worker: committed entries go out with the proposals
//! waiting for them; the worker's reports (applied, staged, checked, snapshotted)
//! come back.

use raft_core::{Entry, EntryPayload, LogIndex};
use raft_storage::LogStore;
use tracing::error;

use super::NodeTask;
use crate::apply::{ApplyJob, ApplyReport};
use crate::error::{Error, Result};
use crate::state_machine::StateMachine;
use crate::transport::Transport;

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Committed entries go to the apply worker with the proposals waiting for them;
    /// membership requests resolve here, once their final configuration commits.
    pub(super) fn hand_to_applier(&mut self, entries: Vec<Entry>) {
        let (Some(first), Some(last)) = (entries.first().map(|e| e.index), entries.last().map(|e| e.index)) else {
            return;
        };
        // Proposals at or before the snapshot the worker holds now were covered by it:
        // they may or may not be in it, so their outcome is unknown.
        let covered: Vec<LogIndex> = self.proposals.range(..first).map(|(i, _)| *i).collect();
        for i in covered {
            if let Some((_, reply)) = self.proposals.remove(&i) {
                let _ = reply.send(Err(Error::Timeout(self.config.request_timeout)));
            }
        }
        let mut waiting = Vec::new();
        let later = self.proposals.split_off(&(last + 1));
        for (index, (term, reply)) in std::mem::replace(&mut self.proposals, later) {
            waiting.push((index, term, reply));
        }
        for e in &entries {
            if !matches!(e.payload, EntryPayload::Command(_)) {
                self.on_conf_applied(e.index, e.term, &e.payload);
            }
        }
        self.send_to_applier(ApplyJob::Entries(entries, waiting));
    }

    /// A job for the apply worker (lost, with a log line, if the worker is gone).
    pub(super) fn send_to_applier(&mut self, job: ApplyJob<SM>) {
        if !self.applier.send(job) {
            error!(id = %self.id, "the apply worker is gone");
        }
    }

    /// `first` and every report already queued behind it.
    pub(super) fn drain_applied(&mut self, first: ApplyReport) -> Result<()> {
        self.on_applied(first)?;
        while let Ok(r) = self.applied_rx.try_recv() {
            self.on_applied(r)?;
        }
        Ok(())
    }

    /// One report of the apply worker.
    fn on_applied(&mut self, r: ApplyReport) -> Result<()> {
        match r {
            ApplyReport::Applied(index) => {
                self.applied = self.applied.max(index);
                self.raw.applied_to(index);
                self.maybe_snapshot();
            }
            ApplyReport::Staged(acks) => self.send(acks),
            ApplyReport::Checked(index, verdict) => {
                let accepted = verdict.is_some();
                self.accepted = verdict.map(|staged| (index, staged));
                self.raw.snapshot_received(index, accepted);
            }
            ApplyReport::Snapshot(index, staged) => self.snapshot_staged(index, staged)?,
        }
        Ok(())
    }
}
