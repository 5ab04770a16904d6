//! The hand-off to the log writer: each Ready's work is split up (messages to send,
//! a write to persist, entries to apply, reads answered), the write goes to the log
//! writer thread (or inline for memory storage), and its report tells the core what
//! is durable. A write stuck too long makes the node unhealthy.

use raft_core::{Message, Role};
use raft_storage::LogStore;
use tracing::{info, warn};

use super::NodeTask;
use crate::apply::ApplyJob;
use crate::error::{Error, Result};
use crate::log_writer::{self, Persisted, SnapshotToInstall, WriteJob};
use crate::metrics::Counters;
use crate::state_machine::StateMachine;
use crate::transport::Transport;

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Hands out every Ready the core has, without waiting for any lane.
    pub(super) fn process_ready(&mut self) -> Result<()> {
        while self.raw.has_ready() {
            let rd = self.raw.ready();
            self.observe(&rd);
            // Acknowledges the Ready (advance_async); its votes and append
            // acknowledgements wait in the driver for its write, and every write
            // before it (the writer reports in order).
            let work = self.ready.on_ready(&mut self.raw, rd);
            let raft_core::Work {
                messages,
                persist,
                committed_entries,
                read_states,
                snapshot_chunks,
                ..
            } = work;
            let messages = self.stage_chunks(messages, snapshot_chunks);
            self.send(messages);
            if let Some(job) = persist {
                // A leader's snapshot was staged and restored by the apply worker
                // before the core accepted it: the writer installs the staged data.
                let snapshot = match job.snapshot {
                    Some(s) => match self.accepted.take() {
                        Some((index, staged)) if index == s.meta.index => Some(SnapshotToInstall {
                            meta: s.meta,
                            staged: Some(staged),
                        }),
                        _ => {
                            return Err(Error::Internal(format!(
                                "the core installs a snapshot at {} that the state machine did not accept",
                                s.meta.index
                            )))
                        }
                    },
                    None => None,
                };
                self.write(WriteJob {
                    storage: self.storage.clone(),
                    snapshot,
                    entries: job.entries,
                    hard_state: job.hard_state,
                    job: Some(job.id),
                    done: self.persisted_tx.clone(),
                    counters: self.counters.clone(),
                })?;
            }
            if !committed_entries.is_empty() {
                self.hand_to_applier(committed_entries);
            }
            for rs in read_states {
                self.on_read_state(rs);
            }
        }
        // An accepted snapshot the core did not install (it was covered meanwhile).
        self.accepted = None;
        self.publish_view();
        Ok(())
    }

    /// A leader's snapshot is staged and checked by the apply worker, which restores
    /// the state machine from it before the core accepts it. The acknowledgements of
    /// the chunks (answers that are not final) leave once the worker staged them, so
    /// the leader never sends faster than the disk takes them.
    fn stage_chunks(&mut self, messages: Vec<Message>, chunks: Vec<raft_core::SnapshotChunk>) -> Vec<Message> {
        if chunks.is_empty() {
            return messages;
        }
        let (mut acks, now): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|m| matches!(&m.body, raft_core::MessageBody::InstallSnapshotResponse(r) if !r.done));
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let acks = if i == last {
                std::mem::take(&mut acks)
            } else {
                Vec::new()
            };
            self.send_to_applier(ApplyJob::Chunk(chunk, acks));
        }
        now
    }

    pub(super) fn write(&mut self, job: WriteJob<S>) -> Result<()> {
        self.writes_in_flight += 1;
        if self.write_inline {
            // Memory-only storage: no IO, so no thread handoff either.
            let report = log_writer::write_now(job);
            return self.on_persisted(report);
        }
        if self.writer.submit(job) {
            Ok(())
        } else {
            Err(Error::Internal("the log writer is gone".into()))
        }
    }

    /// `first` and every report already queued behind it.
    pub(super) fn drain_persisted(&mut self, first: Persisted) -> Result<()> {
        self.on_persisted(first)?;
        while let Ok(p) = self.persisted_rx.try_recv() {
            self.on_persisted(p)?;
        }
        Ok(())
    }

    /// A write job is durable: the core may count it, its messages may leave.
    pub(super) fn on_persisted(&mut self, p: Persisted) -> Result<()> {
        self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
        if let Some(e) = p.error {
            return Err(Error::Storage(e.into()));
        }
        if let Some(meta) = p.snapshot {
            let index = meta.index;
            self.raw.on_snapshot_persisted(index);
            if index > self.last_snapshot.index {
                self.last_snapshot = meta;
            }
            if self.snapshotting {
                self.snapshotting = false;
                Counters::add(&self.counters.snapshots_taken, 1);
                info!(id = %self.id, index, "snapshot taken; log compacted");
                self.answer_snapshot_waiters(Ok(()));
            }
        }
        if let Some(job) = p.job {
            // Tells the core what is durable; the messages that waited leave.
            let released = self
                .ready
                .on_persisted(&mut self.raw, job)
                .map_err(|e| Error::Internal(format!("the log writer's report: {e}")))?;
            self.send(released);
        }
        Ok(())
    }

    /// A log write stuck for longer than `disk_stall_timeout` makes the node report
    /// itself unhealthy. A leader whose own write is stuck for longer than an election
    /// timeout steps down, so that a node with a healthy disk can lead (until then it
    /// commits only through the others and acknowledges nothing: it applies only what
    /// it persisted).
    pub(super) fn check_disk(&mut self) {
        let age = self.counters.write_in_flight.age().unwrap_or_default();
        let stalled = age > self.config.disk_stall_timeout;
        if stalled != self.disk_stalled {
            self.disk_stalled = stalled;
            if stalled {
                warn!(id = %self.id, seconds = age.as_secs_f64(), "a log write is stalled");
            } else {
                info!(id = %self.id, "the log writes again");
            }
        }
        if self.raw.role() == Role::Leader && age > self.config.election_timeout {
            warn!(id = %self.id, seconds = age.as_secs_f64(), "stepping down: this leader's log write is stalled");
            self.raw.step_down();
        }
    }
}
