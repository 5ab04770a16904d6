//! Snapshots on the node task: every `snapshot_interval` applied entries or when
//! asked through the handle, the apply worker snapshots the state machine and the log
//! writer saves it and compacts the log behind it.

use bytes::Bytes;
use raft_core::{LogIndex, SnapshotMeta};
use raft_storage::{LogStore, StagedSnapshot};
use tokio::sync::oneshot;
use tracing::warn;

use super::NodeTask;
use crate::apply::ApplyJob;
use crate::error::{Error, Result};
use crate::log_writer::{SnapshotToInstall, WriteJob};
use crate::state_machine::StateMachine;
use crate::transport::Transport;

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Every `snapshot_interval` applied entries: the apply worker snapshots the
    /// state machine, and the log writer saves it and compacts the log behind it.
    pub(super) fn maybe_snapshot(&mut self) {
        let every = self.config.snapshot_interval;
        if every == 0 || self.snapshotting || self.applied < self.last_snapshot.index.saturating_add(every) {
            return;
        }
        self.start_snapshot();
    }

    /// A snapshot asked for through the handle. It is answered by a snapshot job sent
    /// to the apply worker after it arrived (a job sent before might not hold a write
    /// acknowledged in between), once that snapshot is durable.
    pub(super) fn snapshot_now(&mut self, reply: oneshot::Sender<Result<SnapshotMeta>>) {
        self.snapshot_waiters.push((self.snapshot_jobs, reply));
        if !self.snapshotting {
            self.start_snapshot();
        }
    }

    fn start_snapshot(&mut self) {
        self.snapshotting = true;
        self.snapshot_jobs = self.snapshot_jobs.saturating_add(1);
        self.send_to_applier(ApplyJob::Snapshot);
    }

    /// The apply worker snapshotted the state machine at `index` (or could not): the
    /// log writer saves the snapshot and compacts the log behind it.
    pub(super) fn snapshot_staged(&mut self, index: LogIndex, staged: Result<StagedSnapshot>) -> Result<()> {
        // A snapshot installed from the leader meanwhile may be newer; and a
        // state machine that cannot snapshot now is asked again later. Neither
        // stops the node.
        if index <= self.last_snapshot.index {
            // Nothing applied since the latest snapshot (or a newer one came).
            self.snapshotting = false;
            self.answer_snapshot_waiters(Ok(()));
            return Ok(());
        }
        let snap = match staged.and_then(|staged| {
            let snap = self.raw.create_snapshot(index, Bytes::new()).map_err(Error::from)?;
            Ok((snap.meta, staged))
        }) {
            Ok(snap) => snap,
            Err(e) => {
                warn!(id = %self.id, index, error = %e, "no snapshot taken this time");
                self.snapshotting = false;
                self.answer_snapshot_waiters(Err(e.to_string()));
                return Ok(());
            }
        };
        self.write(WriteJob {
            storage: self.storage.clone(),
            snapshot: Some(SnapshotToInstall {
                meta: snap.0,
                staged: Some(snap.1),
            }),
            entries: Vec::new(),
            hard_state: None,
            job: None,
            done: self.persisted_tx.clone(),
            counters: self.counters.clone(),
        })
    }

    /// The snapshot job in flight ended: durable or covered by a newer snapshot
    /// (`Ok`), or not taken this time. The callers it answers hear; those that came
    /// after it was sent get a job of their own.
    pub(super) fn answer_snapshot_waiters(&mut self, outcome: std::result::Result<(), String>) {
        let job = self.snapshot_jobs;
        let (answered, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.snapshot_waiters)
            .into_iter()
            .partition(|(after, _)| *after < job);
        for (_, reply) in answered {
            let _ = reply.send(match &outcome {
                Ok(()) => Ok(self.last_snapshot.clone()),
                Err(e) => Err(Error::Internal(format!("no snapshot taken: {e}"))),
            });
        }
        self.snapshot_waiters = later;
        if !self.snapshot_waiters.is_empty() && !self.snapshotting {
            self.start_snapshot();
        }
    }
}
