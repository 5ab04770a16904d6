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
//! their storage, and each round writes each storage once. Storages that share one
//! durable log ([`LogStore::sync_domain`], e.g. the groups of a
//! `raft_storage::MultiLog`) are written without a sync and then synced once per
//! round: one fdatasync for every group that had data.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use raft_core::{Entry, HardState, JobId, SnapshotMeta};
use raft_storage::{LogStore, StagedSnapshot, SyncDomain};
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
    let result = write_group(std::slice::from_mut(&mut job), false).map(|w| w.done());
    Persisted {
        job: job.job,
        snapshot: job.snapshot.as_ref().map(|s| s.meta.clone()),
        error: result.err().map(|e| e.to_string()),
    }
}

/// Jobs written to a shared log and waiting for its sync, with what their write did.
struct Unsynced<S> {
    jobs: Vec<WriteJob<S>>,
    written: Written,
}

fn run<S: LogStore>(rx: std_mpsc::Receiver<WriteJob<S>>, in_flight: &InFlight) {
    while let Ok(first) = rx.recv() {
        let mut round = vec![first];
        while let Ok(more) = rx.try_recv() {
            round.push(more);
        }
        // Jobs of one storage are written in their order; a snapshot ends a group
        // (it is saved before the entries that follow it). Storages that share one
        // log are written first and made durable together at the end of the round:
        // one sync for every group that had data.
        let mut unsynced: Vec<Unsynced<S>> = Vec::new();
        while !round.is_empty() {
            let mut end = 1;
            while end < round.len() && round[end].storage.same(&round[0].storage) && round[end].snapshot.is_none() {
                end += 1;
            }
            let snapshot = round[0].snapshot.is_some();
            if snapshot && !sync_and_report(&mut unsynced, in_flight) {
                fail(round.drain(..));
                break;
            }
            in_flight.begin();
            let result = write_group(&mut round[..end], !snapshot);
            in_flight.end();
            let jobs: Vec<WriteJob<S>> = round.drain(..end).collect();
            match result {
                Ok(written) if written.domain.is_some() => unsynced.push(Unsynced { jobs, written }),
                Ok(written) => {
                    written.done();
                    report(jobs, None);
                }
                Err(e) => {
                    report(jobs, Some(e.to_string()));
                    // Nothing after a failed write may be reported durable; the node
                    // stops.
                    fail(unsynced.drain(..).flat_map(|u| u.jobs));
                    fail(round.drain(..));
                }
            }
        }
        sync_and_report(&mut unsynced, in_flight);
    }
    debug!("log writer stopped");
}

/// Syncs each shared log the jobs wrote to once, then reports the jobs; false if a
/// sync failed (its jobs are reported failed).
fn sync_and_report<S>(unsynced: &mut Vec<Unsynced<S>>, in_flight: &InFlight) -> bool {
    let mut failed: Vec<u64> = Vec::new();
    let mut synced: Vec<u64> = Vec::new();
    for u in unsynced.iter() {
        let Some(domain) = &u.written.domain else { continue };
        let id = domain.id();
        if synced.contains(&id) || failed.contains(&id) {
            continue;
        }
        in_flight.begin();
        let result = domain.sync();
        in_flight.end();
        match result {
            Ok(()) => synced.push(id),
            Err(e) => {
                error!(error = %e, "cannot sync a shared log");
                failed.push(id);
            }
        }
    }
    for u in unsynced.drain(..) {
        let ok = u.written.domain.as_ref().is_some_and(|d| synced.contains(&d.id()));
        if ok {
            u.written.done();
            report(u.jobs, None);
        } else {
            report(u.jobs, Some("the shared log's sync failed".into()));
        }
    }
    failed.is_empty()
}

fn report<S>(jobs: Vec<WriteJob<S>>, error: Option<String>) {
    for job in jobs {
        let _ = job.done.send(Persisted {
            job: job.job,
            snapshot: job.snapshot.as_ref().map(|s| s.meta.clone()),
            error: error.clone(),
        });
    }
}

fn fail<S>(jobs: impl Iterator<Item = WriteJob<S>>) {
    for job in jobs {
        let _ = job.done.send(Persisted {
            job: None,
            snapshot: None,
            error: Some("an earlier write failed".into()),
        });
    }
}

/// What one storage's write did: made durable on return (`domain` is `None`), or
/// written to a shared log that `domain` syncs.
struct Written {
    domain: Option<Arc<dyn SyncDomain>>,
    started: Instant,
    entries: u64,
    counters: Option<Arc<Counters>>,
}

impl Written {
    /// The write is durable: count it.
    fn done(self) {
        let Some(c) = self.counters else { return };
        c.persist_latency.record(self.started.elapsed());
        Counters::add(&c.persists, 1);
        Counters::add(&c.entries_persisted, self.entries);
    }
}

/// Writes the jobs of one storage: the snapshot of the first (if any), then all their
/// entries as one append, then the newest hard state. With `defer`, a storage that
/// shares a log ([`LogStore::sync_domain`]) is written without a sync, and the caller
/// syncs the returned domain.
fn write_group<S: LogStore>(jobs: &mut [WriteJob<S>], defer: bool) -> Result<Written, BoxError> {
    let staged = jobs
        .first_mut()
        .and_then(|j| j.snapshot.as_mut())
        .and_then(|s| s.staged.take());
    let started = Instant::now();
    let nothing = Written {
        domain: None,
        started,
        entries: 0,
        counters: None,
    };
    let Some(first) = jobs.first() else { return Ok(nothing) };
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
        return Ok(nothing);
    }
    let mut st = first.storage.lock();
    let domain = if defer { st.sync_domain() } else { None };
    let outcome = (|| -> Result<(), BoxError> {
        if let Some(s) = &first.snapshot {
            let staged = staged.ok_or("the snapshot's staged data is gone")?;
            st.install_snapshot(&s.meta, staged)?;
        }
        if domain.is_some() {
            st.write_unsynced(&merged, hard_state)?;
            return Ok(());
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
    Ok(Written {
        domain,
        started,
        entries: merged.len() as u64,
        counters: Some(first.counters.clone()),
    })
}
