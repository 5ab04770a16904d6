//! The log writer: a thread that persists what Readys hand out, so the node task
//! never waits for a disk.
//!
//! Each [`WriteJob`] carries one Ready's snapshot, entries and hard state. The writer
//! takes every job queued when it wakes, merges consecutive jobs of one storage into
//! a single `append` (one write and one fdatasync for many Readys: group commit),
//! writes the newest hard state once, and then reports each job back in order through
//! the job's own channel (the node's [`raft_core::ReadyDriver`] then releases the
//! messages that had to wait for durability).
//!
//! One writer can serve many storages (many Raft groups of one process): jobs name
//! their storage, and each round writes each storage once.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use raft_core::{Entry, HardState, JobId, SnapshotMeta};
use raft_storage::{LogStore, StagedSnapshot};
use tokio::sync::mpsc;
use tracing::{debug, error};

use crate::error::BoxError;
use crate::metrics::{Counters, InFlight};
use crate::shared_storage::SharedStorage;

/// What one Ready asks to persist.
pub(crate) struct WriteJob<S> {
    pub(crate) storage: SharedStorage<S>,
    pub(crate) snapshot: Option<SnapshotToInstall>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) hard_state: Option<HardState>,
    /// The Ready's job ([`raft_core::ReadyDriver`]); `None` for the node's own
    /// snapshot.
    pub(crate) job: Option<JobId>,
    pub(crate) done: mpsc::UnboundedSender<Persisted>,
    pub(crate) counters: Arc<Counters>,
}

/// A snapshot for the writer to install: its metadata and its staged data (taken
/// when installed).
pub(crate) struct SnapshotToInstall {
    pub(crate) meta: SnapshotMeta,
    pub(crate) staged: Option<StagedSnapshot>,
}

/// A job is durable (or failed).
#[derive(Debug)]
pub(crate) struct Persisted {
    /// The Ready's job, if it was one.
    pub(crate) job: Option<JobId>,
    /// The snapshot written, if any.
    pub(crate) snapshot: Option<raft_core::SnapshotMeta>,
    /// The write failed: the node must stop.
    pub(crate) error: Option<String>,
}

/// A handle to a log writer thread; dropping every handle ends the thread.
pub(crate) struct LogWriter<S> {
    jobs: std_mpsc::Sender<WriteJob<S>>,
    in_flight: Arc<InFlight>,
}

impl<S> Clone for LogWriter<S> {
    fn clone(&self) -> Self {
        LogWriter {
            jobs: self.jobs.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<S: LogStore + Send + 'static> LogWriter<S> {
    /// Starts a writer thread named after `name`.
    pub(crate) fn start(name: &str) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<WriteJob<S>>();
        let in_flight = Arc::new(InFlight::default());
        let busy = in_flight.clone();
        std::thread::Builder::new()
            .name(format!("raft-log-{name}"))
            .spawn(move || run(rx, &busy))?;
        Ok(LogWriter { jobs: tx, in_flight })
    }

    /// The write in progress, if any (every node the writer serves watches it for a
    /// stalled disk).
    pub(crate) fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// Queues a job; false if the writer is gone.
    pub(crate) fn submit(&self, job: WriteJob<S>) -> bool {
        self.jobs.send(job).is_ok()
    }
}

/// Writes one job right away on the caller's thread (a storage whose writes are
/// memory only, [`LogStore::writes_inline`]) and returns its report.
pub(crate) fn write_now<S: LogStore>(mut job: WriteJob<S>) -> Persisted {
    let result = write_group(std::slice::from_mut(&mut job));
    Persisted {
        job: job.job,
        snapshot: job.snapshot.as_ref().map(|s| s.meta.clone()),
        error: result.err().map(|e| e.to_string()),
    }
}

fn run<S: LogStore>(rx: std_mpsc::Receiver<WriteJob<S>>, in_flight: &InFlight) {
    while let Ok(first) = rx.recv() {
        let mut round = vec![first];
        while let Ok(more) = rx.try_recv() {
            round.push(more);
        }
        // Jobs of one storage are written in their order; a snapshot ends a group
        // (it is saved before the entries that follow it).
        while !round.is_empty() {
            let mut end = 1;
            while end < round.len() && round[end].storage.same(&round[0].storage) && round[end].snapshot.is_none() {
                end += 1;
            }
            in_flight.begin();
            let result = write_group(&mut round[..end]);
            in_flight.end();
            for job in round.drain(..end) {
                let _ = job.done.send(Persisted {
                    job: job.job,
                    snapshot: job.snapshot.as_ref().map(|s| s.meta.clone()),
                    error: result.as_ref().err().map(|e| e.to_string()),
                });
            }
            if result.is_err() {
                // Nothing after a failed write may be reported durable; the node stops.
                for job in round.drain(..) {
                    let _ = job.done.send(Persisted {
                        job: None,
                        snapshot: None,
                        error: Some("an earlier write failed".into()),
                    });
                }
            }
        }
    }
    debug!("log writer stopped");
}

/// Writes the jobs of one storage: the snapshot of the first (if any), then all their
/// entries as one append, then the newest hard state.
fn write_group<S: LogStore>(jobs: &mut [WriteJob<S>]) -> Result<(), BoxError> {
    let staged = jobs
        .first_mut()
        .and_then(|j| j.snapshot.as_mut())
        .and_then(|s| s.staged.take());
    let Some(first) = jobs.first() else { return Ok(()) };
    let started = Instant::now();
    let mut merged: Vec<Entry> = Vec::new();
    for job in jobs.iter() {
        if let Some(e) = job.entries.first() {
            // A later Ready may overwrite part of an earlier one (a new leader).
            merged.retain(|m| m.index < e.index);
            merged.extend(job.entries.iter().cloned());
        }
    }
    let hard_state = jobs.iter().rev().find_map(|j| j.hard_state.as_ref());
    if first.snapshot.is_none() && merged.is_empty() && hard_state.is_none() {
        return Ok(());
    }
    let mut st = first.storage.lock();
    let outcome = (|| -> Result<(), BoxError> {
        if let Some(s) = &first.snapshot {
            let staged = staged.ok_or("the snapshot's staged data is gone")?;
            st.install_snapshot(&s.meta, staged)?;
        }
        if !merged.is_empty() {
            st.append(&merged)?;
        }
        if let Some(hs) = hard_state {
            st.set_hard_state(hs)?;
        }
        Ok(())
    })();
    // Whatever happened, the tail must match the storage again.
    let installed = first.snapshot.is_some();
    if let Err(e) = first
        .storage
        .written(&st, if outcome.is_ok() { &merged } else { &[] }, installed)
    {
        error!(error = %e, "cannot read the log's bounds after a write");
        return Err(e.into());
    }
    drop(st);
    outcome?;
    let c = &first.counters;
    c.persist_latency.record(started.elapsed());
    Counters::add(&c.persists, 1);
    Counters::add(&c.entries_persisted, merged.len() as u64);
    Ok(())
}
