//! The checker's shadow against the node itself (after every Ready) and against its
//! disk (at every restart): the core must hold exactly what it asked to persist.

use raft_core::{LogIndex, MemStorage, RawNode};

use super::Checker;
use crate::shadow::{At, Payload, ShadowLog};
use crate::violation::{Property, Violation};

impl Checker {
    /// Node `i` crashed: it is no longer leader, its state machine is gone, and its
    /// log is what its disk holds (writes still outstanding are lost).
    pub fn on_crash(&mut self, i: usize) {
        let v = &mut self.nodes[i];
        v.down = true;
        v.log = v.disk.clone();
    }

    /// Node `i` restarted: what its disk holds must be exactly what its completed
    /// writes and compactions asked for.
    pub fn on_restart(&mut self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        let store = node.storage();
        let disk = ShadowLog::of_storage(store);
        if disk != self.nodes[i].disk {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} restarted with a log ({}, {}] that differs from the one it persisted ({}, {}]",
                    disk.snapshot.0,
                    disk.last_index(),
                    self.nodes[i].disk.snapshot.0,
                    self.nodes[i].disk.last_index()
                ),
            );
        }
        let hs = store.hard_state();
        let v = &mut self.nodes[i];
        v.down = false;
        v.log = disk.clone();
        v.role = node.role();
        v.term = hs.term;
        v.commit = hs.commit.clamp(disk.snapshot.0, disk.last_index());
        v.applied = disk.snapshot.0;
        Ok(())
    }

    /// Cheap agreement between the node's own view of its log and the checker's
    /// shadow, after each Ready.
    pub fn cross_check(&self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        let v = &self.nodes[i];
        let last = node.log_last_index();
        let term = node.log_entry(last).map(|e| e.term);
        if last != v.log.last_index() || (last > v.log.snapshot.0 && term != v.log.term(last)) {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i}'s log ends at {last}/{term:?}, but its Readys handed out a log ending at {}/{}",
                    v.log.last_index(),
                    v.log.last_term()
                ),
            );
        }
        if node.role() != v.role || node.term() != v.term {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} is {} in term {}, but its Readys said {} in term {}",
                    node.role(),
                    node.term(),
                    v.role,
                    v.term
                ),
            );
        }
        Ok(())
    }

    /// Full agreement between the node's log and the shadow (O(log length)).
    pub fn full_check(&self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        for (index, slot) in self.nodes[i].log.iter() {
            let real = node.log_entry(index).map(|e| (e.term, Payload::of(&e)));
            if real != Some(slot) {
                return self.fail(
                    Property::Contract,
                    format!("node {i} has {real:?} at {index}, but its Readys handed out {slot:?}"),
                );
            }
        }
        Ok(())
    }

    /// Whether nodes `a` and `b` hold the same log up to `upto` (compacted parts
    /// count as the committed prefix).
    pub fn logs_agree(&self, a: usize, b: usize, upto: LogIndex) -> bool {
        let (la, lb) = (&self.nodes[a].log, &self.nodes[b].log);
        (1..=upto).all(|index| match (la.at(index), lb.at(index)) {
            (At::Missing, _) | (_, At::Missing) => false,
            (At::Entry(x), At::Entry(y)) => x == y,
            (At::Compacted, At::Entry(s)) | (At::Entry(s), At::Compacted) => self.committed_at(index) == Some(s),
            (At::Compacted, At::Compacted) => true,
        })
    }

    /// The last index of node `i`'s persisted log.
    pub fn last_index_of(&self, i: usize) -> LogIndex {
        self.nodes[i].log.last_index()
    }

    /// The snapshot index of node `i`'s persisted log.
    pub fn snapshot_index_of(&self, i: usize) -> LogIndex {
        self.nodes[i].log.snapshot.0
    }

    /// The applied index of node `i`'s state machine.
    pub fn applied_of(&self, i: usize) -> LogIndex {
        self.nodes[i].applied
    }
}
