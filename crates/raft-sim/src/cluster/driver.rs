//! The driver: each Ready goes through the node's [`ReadyDriver`] (the contract on
//! [`Ready`](raft_core::Ready) in the production order) with the checker watching each step. Its
//! `messages` leave at once; its write joins the node's disk queue and completes
//! some steps later (in order), when the acknowledgements that waited for it leave;
//! its snapshot is installed and its committed entries applied at once. A node armed
//! to crash dies after sending its Ready's messages, with its write and every
//! outstanding one lost (or, for a torn write, after the writes before it completed
//! and its snapshot and some of its entries reached the disk).
//!
//! [`ReadyDriver`]: raft_core::ReadyDriver

use raft_core::{PersistJob, Work};

use super::{SimCluster, MAX_READY_ROUNDS};
use crate::node::CrashPoint;
use crate::shadow::{decode_snapshot, digest_step, Payload};
use crate::violation::{Property, Violation};
use crate::RngExt;

impl SimCluster {
    /// Carries out node `i`'s Readys until it has none, and completes the writes
    /// that are due.
    pub(super) fn drive(&mut self, i: usize) -> Result<(), Violation> {
        for _ in 0..MAX_READY_ROUNDS {
            self.complete_writes(i, false)?;
            let node = &mut self.nodes[i];
            let Some(raw) = node.raw_mut() else {
                return Ok(());
            };
            if !raw.has_ready() {
                return Ok(());
            }
            let rd = raw.ready();
            self.trace.record(self.now, || format!("{} ready: {rd}", self.ids[i]));
            self.checker.on_ready(i, &rd)?;
            let Some((raw, driver)) = self.nodes[i].raw_and_driver() else {
                return Ok(());
            };
            let mut work = driver.on_ready(raw, rd);
            // 1. Messages that may leave before anything is persisted.
            let crash = self.nodes[i].crashes_during(&work);
            self.send_all(i, std::mem::take(&mut work.messages))?;
            if crash {
                self.crash_mid_ready(i, work)?;
                return Ok(());
            }
            // 2. The write joins the disk's queue.
            if let Some(job) = work.persist.clone() {
                let delay = if self.max_persist_delay == 0 {
                    0
                } else {
                    self.rng.range(0, self.max_persist_delay + 1)
                };
                let queue = &mut self.nodes[i].disk_queue;
                let at = queue.back().map_or(0, |(at, _)| *at).max(self.now + delay);
                self.stats.late_writes += u64::from(at > self.now);
                self.trace
                    .record(self.now, || format!("{} queue {} (due at {at})", self.ids[i], job.id));
                queue.push_back((at, job));
            }
            // 3. Install the snapshot, apply; serve reads.
            self.apply(i, work)?;
            // 4. Writes due now complete (at once without a delay).
            self.complete_writes(i, false)?;
            let Some(raw) = self.nodes[i].raw() else {
                return Ok(());
            };
            self.checker.cross_check(i, raw)?;
            self.report_unreachable(i);
        }
        Err(self.violation(Property::Contract, format!("node {i} keeps producing Readys")))
    }

    /// Node `i`'s disk completes its writes that are due (`all`: every one), in order,
    /// and reports them to the node in one batch; the acknowledgements that waited
    /// for them leave.
    pub(super) fn complete_writes(&mut self, i: usize, all: bool) -> Result<(), Violation> {
        let mut last = None;
        while let Some((at, _)) = self.nodes[i].disk_queue.front() {
            if !all && *at > self.now {
                break;
            }
            let Some((_, job)) = self.nodes[i].disk_queue.pop_front() else {
                break;
            };
            self.write(i, &job)?;
            last = Some(job.id);
        }
        let Some(job) = last else { return Ok(()) };
        let Some((raw, driver)) = self.nodes[i].raw_and_driver() else {
            return Ok(());
        };
        match driver.on_persisted(raw, job) {
            Ok(released) => {
                self.trace
                    .record(self.now, || format!("{} durable up to {job}", self.ids[i]));
                self.send_all(i, released)
            }
            Err(e) => Err(self.violation(Property::Contract, format!("node {i}: {e}"))),
        }
    }

    /// Node `i` crashes in the middle of the Ready that gave `work` (its messages
    /// left): its write is lost, or torn after the writes before it completed.
    fn crash_mid_ready(&mut self, i: usize, work: Work) -> Result<(), Violation> {
        let (point, downtime) = self.nodes[i].crash_at.unwrap_or((CrashPoint::NextWrite, 0));
        self.stats.mid_ready_crashes += 1;
        let outstanding = self.nodes[i].disk_queue.len();
        match (point, work.persist) {
            (CrashPoint::TornWrite, Some(job)) => {
                // The disk writes in order: what was ahead of this write is on it.
                while let Some((_, earlier)) = self.nodes[i].disk_queue.pop_front() {
                    self.write(i, &earlier)?;
                }
                let kept = self.rng.below(job.entries.len());
                let torn = PersistJob {
                    id: job.id,
                    snapshot: job.snapshot,
                    entries: job.entries[..kept].to_vec(),
                    hard_state: None,
                };
                self.write(i, &torn)?;
                self.crash_now(
                    i,
                    downtime,
                    &format!("in a torn write: {outstanding} earlier writes and {kept} of its entries persisted"),
                );
            }
            _ => {
                self.stats.writes_lost += 1;
                self.crash_now(
                    i,
                    downtime,
                    &format!("in the middle of a Ready: its write and {outstanding} outstanding are lost"),
                )
            }
        }
        Ok(())
    }

    /// Tells node `i` which of its sends failed on a cut link.
    fn report_unreachable(&mut self, i: usize) {
        if self.unreachable.is_empty() {
            return;
        }
        let mut rest = Vec::new();
        for (from, to, snapshot) in std::mem::take(&mut self.unreachable) {
            let target = self.ids[to].clone();
            match self.nodes[from].raw_mut() {
                Some(raw) if from == i => {
                    raw.report_unreachable(&target);
                    if snapshot {
                        raw.report_snapshot(&target, false);
                    }
                }
                Some(_) => rest.push((from, to, snapshot)),
                None => {}
            }
        }
        self.unreachable = rest;
    }

    /// Node `i`'s disk completes `job`: snapshot, entries, hard state.
    fn write(&mut self, i: usize, job: &PersistJob) -> Result<(), Violation> {
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(());
        };
        let store = raw.storage_mut();
        if let Some(s) = &job.snapshot {
            store.apply_snapshot(s.clone());
        }
        if let Err(e) = store.append(&job.entries) {
            return Err(self.violation(
                Property::Contract,
                format!("node {i}: storage refused the entries of {}: {e}", job.id),
            ));
        }
        if let Some(hs) = &job.hard_state {
            store.set_hard_state(hs.clone());
        }
        self.checker.on_persisted(i, job);
        Ok(())
    }

    /// Installs the Ready's snapshot in the state machine, applies its committed
    /// entries and serves the reads whose index is applied.
    fn apply(&mut self, i: usize, work: Work) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        if let Some(s) = work.snapshot_to_install() {
            self.checker.on_install(i, s)?;
            self.stats.snapshots_installed += 1;
            node.applied = s.meta.index;
            node.digest = decode_snapshot(&s.data).map_or(0, |(_, d)| d);
        }
        for e in &work.committed_entries {
            self.checker.on_apply(i, e)?;
            node.applied = e.index;
            node.digest = digest_step(node.digest, e.index, (e.term, Payload::of(e)));
        }
        if let (Some(e), Some(raw)) = (work.committed_entries.last(), node.raw_mut()) {
            raw.applied_to(e.index);
        }
        for rs in work.read_states {
            self.checker.on_read_state(i, &rs)?;
            self.nodes[i].reads.push(rs);
        }
        let applied = self.nodes[i].applied;
        let before = self.nodes[i].reads.len();
        self.nodes[i].reads.retain(|r| r.index > applied);
        self.stats.reads_served += (before - self.nodes[i].reads.len()) as u64;
        Ok(())
    }
}
