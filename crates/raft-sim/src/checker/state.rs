//! State Machine Safety and linearizable reads: what nodes apply, the snapshots
//! they make and install, and the indexes reads are served at.

use raft_core::{Entry, ReadState, Snapshot};

use super::Checker;
use crate::shadow::{decode_snapshot, Payload};
use crate::violation::{Property, Violation};

impl Checker {
    /// A snapshot node `i` made or received must hold exactly the committed prefix.
    pub(super) fn check_snapshot(&mut self, i: usize, s: &Snapshot, how: &str) -> Result<(), Violation> {
        self.stats.snapshots_checked += 1;
        let (index, term) = (s.meta.index, s.meta.term);
        let expected = self.committed_rec(index).map(|c| (c.slot.0, c.digest));
        let claimed = decode_snapshot(&s.data);
        if index > 0 && (expected.map(|e| e.0) != Some(term) || claimed != expected.map(|e| (index, e.1))) {
            return self.fail(
                Property::StateMachineSafety,
                format!(
                    "node {i} {how} a snapshot at {index}/{term} claiming {claimed:?} (index, digest), \
                     but the committed prefix there is {expected:?} (term, digest)"
                ),
            );
        }
        Ok(())
    }

    /// Node `i` applied `e` to its state machine.
    pub fn on_apply(&mut self, i: usize, e: &Entry) -> Result<(), Violation> {
        let applied = self.nodes[i].applied;
        if e.index != applied + 1 {
            return self.fail(
                Property::StateMachineSafety,
                format!(
                    "node {i} applied index {} right after {applied} (twice or out of order)",
                    e.index
                ),
            );
        }
        let slot = (e.term, Payload::of(e));
        match self.committed_at(e.index) {
            Some(c) if c == slot => {}
            c => {
                return self.fail(
                    Property::StateMachineSafety,
                    format!(
                        "node {i} applied {} = {:?} of term {}, but the committed entry there is {c:?}",
                        e.index, slot.1, slot.0
                    ),
                );
            }
        }
        self.nodes[i].applied = e.index;
        self.stats.applied += 1;
        Ok(())
    }

    /// Node `i` installed `s` in its state machine (after persisting it).
    pub fn on_install(&mut self, i: usize, s: &Snapshot) -> Result<(), Violation> {
        let applied = self.nodes[i].applied;
        if s.meta.index < applied {
            return self.fail(
                Property::StateMachineSafety,
                format!(
                    "node {i}'s state machine went back from {applied} to a snapshot at {}",
                    s.meta.index
                ),
            );
        }
        self.nodes[i].applied = s.meta.index;
        Ok(())
    }

    /// The application of node `i` snapshotted its state machine and compacted the
    /// log behind it.
    pub fn on_compact(&mut self, i: usize, s: &Snapshot) -> Result<(), Violation> {
        self.check_snapshot(i, s, "made")?;
        if s.meta.index > self.nodes[i].applied {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} snapshotted at {} beyond its applied {}",
                    s.meta.index, self.nodes[i].applied
                ),
            );
        }
        // The application compacts the disk; the node's log follows it.
        self.nodes[i].disk.install(s.meta.index, s.meta.term);
        self.nodes[i].log.install(s.meta.index, s.meta.term);
        Ok(())
    }

    /// A read with id `read` began now.
    pub fn on_read_start(&mut self, read: u64) {
        let commit = self.commit_index();
        self.reads.insert(read, commit);
    }

    /// Node `i` got the result of a read (its context is the read id's 8 bytes).
    pub fn on_read_state(&mut self, i: usize, rs: &ReadState) -> Result<(), Violation> {
        let read = <[u8; 8]>::try_from(&rs.context[..]).map(u64::from_le_bytes);
        let Some(&started) = read.ok().and_then(|r| self.reads.get(&r)) else {
            return self.fail(
                Property::Contract,
                format!("node {i} got a ReadState for an unknown context {:?}", rs.context),
            );
        };
        self.stats.reads_checked += 1;
        if rs.index < started {
            return self.fail(
                Property::LinearizableReads,
                format!(
                    "node {i}: read {:?} was given index {}, but index {started} was committed before the read began",
                    read.unwrap_or_default(),
                    rs.index
                ),
            );
        }
        Ok(())
    }
}
