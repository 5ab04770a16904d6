//! The driver: carries out each Ready exactly as the contract on [`Ready`] says,
//! with the checker watching each step; a node armed to crash dies after sending its
//! Ready's messages and before persisting anything (or, for a torn write, after
//! persisting its snapshot and some of its entries).

use super::{SimCluster, MAX_READY_ROUNDS};
use crate::raw_node::Ready;
use crate::sim::node::CrashPoint;
use crate::sim::shadow::{decode_snapshot, digest_step, Payload};
use crate::sim::violation::{Property, Violation};

impl SimCluster {
    /// Carries out node `i`'s Readys until it has none, by the contract on [`Ready`].
    pub(super) fn drive(&mut self, i: usize) -> Result<(), Violation> {
        for _ in 0..MAX_READY_ROUNDS {
            let Some(raw) = self.nodes[i].raw_mut() else {
                return Ok(());
            };
            if !raw.has_ready() {
                return Ok(());
            }
            let mut rd = raw.ready();
            self.trace.record(self.now, || format!("{} ready: {rd}", self.ids[i]));
            self.checker.on_ready(i, &rd)?;
            // 1. Messages that may leave before anything is persisted.
            let crash = self.nodes[i].crashes_during(&rd);
            self.send_all(i, std::mem::take(&mut rd.messages))?;
            if crash {
                let (point, downtime) = self.nodes[i].crash_at.unwrap_or((CrashPoint::NextWrite, 0));
                self.stats.mid_ready_crashes += 1;
                if point == CrashPoint::TornWrite {
                    let kept = crate::sim::RngExt::below(&mut self.rng, rd.entries.len());
                    let torn = Ready {
                        snapshot: rd.snapshot.take(),
                        entries: rd.entries[..kept].to_vec(),
                        ..Ready::default()
                    };
                    self.persist(i, &torn)?;
                    self.checker.on_persisted(i, &torn)?;
                    self.crash_now(
                        i,
                        downtime,
                        &format!("in a torn write: {kept} of its entries persisted"),
                    );
                } else {
                    self.crash_now(i, downtime, "in the middle of a Ready: its writes are lost");
                }
                return Ok(());
            }
            // 2. Persist snapshot, entries, hard state.
            self.persist(i, &rd)?;
            self.checker.on_persisted(i, &rd)?;
            // 3. Messages that promise durable state.
            self.send_all(i, std::mem::take(&mut rd.persisted_messages))?;
            // 4. Apply; 5. serve reads.
            self.apply(i, rd)?;
            // 6. Acknowledge.
            let Some(raw) = self.nodes[i].raw_mut() else {
                return Ok(());
            };
            raw.advance();
            self.checker.cross_check(i, raw)?;
            self.report_unreachable(i);
        }
        Err(self.violation(Property::Contract, format!("node {i} keeps producing Readys")))
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

    fn persist(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(());
        };
        let store = raw.storage_mut();
        if let Some(s) = &rd.snapshot {
            store.apply_snapshot(s.clone());
        }
        if let Err(e) = store.append(&rd.entries) {
            return Err(self.violation(
                Property::Contract,
                format!("node {i}: storage refused the Ready's entries: {e}"),
            ));
        }
        if let Some(hs) = &rd.hard_state {
            store.set_hard_state(hs.clone());
        }
        Ok(())
    }

    fn apply(&mut self, i: usize, rd: Ready) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        if let Some(s) = &rd.snapshot {
            self.checker.on_install(i, s)?;
            self.stats.snapshots_installed += 1;
            node.applied = s.meta.index;
            node.digest = decode_snapshot(&s.data).map_or(0, |(_, d)| d);
        }
        for e in &rd.committed_entries {
            self.checker.on_apply(i, e)?;
            node.applied = e.index;
            node.digest = digest_step(node.digest, e.index, (e.term, Payload::of(e)));
        }
        for rs in rd.read_states {
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
