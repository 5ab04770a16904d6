//! What the outside world does to the nodes: crashes and restarts, pauses, the
//! application's snapshots, client proposals, reads, leadership transfers and
//! membership changes, and scripted elections.

use bytes::Bytes;
use raft_core::{Error, LogIndex, MembershipChange, Role, Storage, Term};

use super::SimCluster;
use crate::node::{CrashPoint, Life};
use crate::shadow::encode_snapshot;
use crate::violation::{Property, Violation};

impl SimCluster {
    /// Crashes node `i` at `point`, to come back `downtime` ticks later.
    pub fn crash(&mut self, i: usize, point: CrashPoint, downtime: u64) {
        if !self.nodes[i].is_up() {
            return;
        }
        match point {
            CrashPoint::Now => self.crash_now(i, downtime, "between inputs"),
            armed => {
                self.trace
                    .record(self.now, || format!("{} will crash at {armed:?}", self.ids[i]));
                self.nodes[i].crash_at = Some((armed, downtime));
            }
        }
    }

    pub(super) fn crash_now(&mut self, i: usize, downtime: u64, how: &str) {
        self.stats.crashes += 1;
        self.stats.writes_lost += self.nodes[i].disk_queue.len() as u64;
        let restart_at = self.now + downtime;
        self.trace.record(self.now, || {
            format!("{} CRASH {how}; restarts at {restart_at}", self.ids[i])
        });
        self.nodes[i].crash(restart_at);
        self.checker.on_crash(i);
    }

    pub(super) fn restart(&mut self, i: usize) -> Result<(), Violation> {
        let seed = self.rng.next_u64();
        if let Err(e) = self.nodes[i].restart(seed) {
            return Err(self.violation(
                Property::Contract,
                format!("node {i} could not restart from its disk: {e}"),
            ));
        }
        self.stats.restarts += 1;
        if let Some(live) = self.liveness.as_mut() {
            live.restarted(i, self.now);
        }
        self.trace.record(self.now, || format!("{} RESTART", self.ids[i]));
        if let Some(raw) = self.nodes[i].raw() {
            self.checker.on_restart(i, raw)?;
        }
        self.drive(i)
    }

    /// Brings every crashed node back now and clears armed crash points.
    pub fn restart_all(&mut self) -> Result<(), Violation> {
        for i in 0..self.len() {
            self.nodes[i].crash_at = None;
            self.nodes[i].paused_until = self.nodes[i].paused_until.min(self.now);
            self.restart_now(i)?;
        }
        Ok(())
    }

    /// Brings node `i` back now if it is down (also if it was decommissioned).
    pub fn restart_now(&mut self, i: usize) -> Result<(), Violation> {
        if let Life::Down { restart_at, .. } = &mut self.nodes[i].life {
            *restart_at = self.now;
            self.restart(i)?;
        }
        Ok(())
    }

    /// The application of node `i` snapshots its state machine at its applied index
    /// (with `pad` filler bytes, so the snapshot spans chunks) and compacts the log.
    pub fn compact(&mut self, i: usize, pad: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let (applied, digest) = (node.applied, node.digest);
        let Some(raw) = node.raw_mut() else { return Ok(()) };
        // Nothing to compact beyond the snapshot the node holds (also one from a
        // leader whose write is still outstanding).
        if applied < raw.storage().first_index().unwrap_or(1).max(raw.status().first_index) {
            return Ok(());
        }
        match raw.create_snapshot(applied, encode_snapshot(applied, digest, pad)) {
            Ok(snap) => {
                self.checker.on_compact(i, &snap)?;
                self.trace.record(self.now, || {
                    format!("{} COMPACT at {}/{}", self.ids[i], snap.meta.index, snap.meta.term)
                });
                raw.storage_mut().apply_snapshot(snap);
                self.stats.compactions += 1;
                self.drive(i)
            }
            // A node that joined with an empty configuration knows none before the
            // first configuration entry it received: it cannot snapshot there.
            Err(Error::SnapshotMembershipUnknown { .. }) => Ok(()),
            Err(e) => Err(self.violation(
                Property::Contract,
                format!("node {i} could not snapshot at applied {applied}: {e}"),
            )),
        }
    }

    /// Takes node `i` out of service for good (it was removed from the cluster).
    pub fn decommission(&mut self, i: usize) {
        if self.nodes[i].is_up() {
            self.trace
                .record(self.now, || format!("{} DECOMMISSIONED", self.ids[i]));
            self.nodes[i].crash(u64::MAX);
            self.checker.on_crash(i);
        }
    }

    /// Proposes a membership change at node `i`; returns whether it was accepted.
    pub fn change_membership(&mut self, i: usize, changes: &[MembershipChange]) -> Result<bool, Violation> {
        if !self.nodes[i].is_running(self.now) {
            return Ok(false);
        }
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(false);
        };
        let r = raw.propose_membership_change(changes);
        self.stats.membership_changes += u64::from(r.is_ok());
        self.trace.record(self.now, || {
            format!("client membership {changes:?} at {}: {r:?}", self.ids[i])
        });
        self.drive(i)?;
        Ok(r.is_ok())
    }

    /// Pauses node `i` for `ticks`: it neither ticks nor receives (messages wait).
    pub fn pause(&mut self, i: usize, ticks: u64) {
        if self.nodes[i].is_running(self.now) {
            self.stats.pauses += 1;
            self.nodes[i].paused_until = self.now + ticks;
            self.trace
                .record(self.now, || format!("{} PAUSE for {ticks} ticks", self.ids[i]));
        }
    }

    /// A client proposes commands (8-byte ids) at node `i`. `Ok(Err(_))` is the
    /// node's refusal (not the leader...), `Err` a violation.
    pub fn propose(&mut self, i: usize, ids: &[u64]) -> Result<Result<(Term, LogIndex), Error>, Violation> {
        if !self.nodes[i].is_running(self.now) {
            return Ok(Err(Error::NotLeader { leader_hint: None }));
        }
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(Err(Error::NotLeader { leader_hint: None }));
        };
        let cmds: Vec<Bytes> = ids.iter().map(|id| Bytes::copy_from_slice(&id.to_le_bytes())).collect();
        let r = raw.propose_batch(cmds);
        match &r {
            Ok(_) => self.stats.proposals_accepted += ids.len() as u64,
            Err(_) => self.stats.proposals_refused += 1,
        }
        self.trace
            .record(self.now, || format!("client propose {ids:?} at {}: {r:?}", self.ids[i]));
        self.drive(i)?;
        Ok(r)
    }

    /// A client starts a linearizable read with id `read` at node `i`; returns
    /// whether the node took it.
    pub fn read(&mut self, i: usize, read: u64) -> Result<bool, Violation> {
        if !self.nodes[i].is_running(self.now) {
            return Ok(false);
        }
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(false);
        };
        self.checker.on_read_start(read);
        let ok = raw.read_index(Bytes::copy_from_slice(&read.to_le_bytes())).is_ok();
        self.stats.reads_started += u64::from(ok);
        self.trace.record(self.now, || {
            format!("client read #{read} at {}: accepted={ok}", self.ids[i])
        });
        self.drive(i)?;
        Ok(ok)
    }

    /// Node `i` starts an election now (as a test scripting a scenario would).
    pub fn campaign(&mut self, i: usize) -> Result<(), Violation> {
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(());
        };
        raw.campaign();
        self.trace.record(self.now, || format!("{} CAMPAIGN", self.ids[i]));
        self.drive(i)
    }

    /// Asks node `i` to hand leadership to node `to`.
    pub fn transfer(&mut self, i: usize, to: usize) -> Result<(), Violation> {
        let target = self.ids[to].clone();
        let Some(raw) = self.nodes[i].raw_mut().filter(|r| r.role() == Role::Leader) else {
            return Ok(());
        };
        let r = raw.transfer_leader(target);
        self.stats.transfers += u64::from(r.is_ok());
        self.trace.record(self.now, || {
            format!("{} transfer leadership to n{}: {r:?}", self.ids[i], to + 1)
        });
        self.drive(i)
    }
}
