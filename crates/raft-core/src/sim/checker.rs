//! The safety checker. It watches every Ready of every node and keeps, per node, a
//! shadow of the persisted log, and for the whole history: the leader of each term,
//! every `(index, term)` ever stored with its payload and predecessor's term, every
//! committed entry with the term it was committed in and the state-machine digest
//! after it, and the commit index when each read began. Each observation costs O(1)
//! per entry it touches, so the properties of the paper (Figure 3) are checked after
//! every input without rescanning logs:
//!
//! - **Election Safety**: at most one leader per term, over the whole history.
//! - **Leader Append-Only**: a leader only appends to its log during its term.
//! - **Log Matching**: two logs with an entry of the same index and term agree on it
//!   and on everything before it. Checked inductively: every stored `(index, term)`
//!   must carry one payload and one predecessor term, in every log, at all times.
//! - **Leader Completeness**: an entry committed in term T is in the log of every
//!   leader of a later term (checked when the leader is elected, and when an entry is
//!   committed while a leader of a later term exists).
//! - **State Machine Safety**: every node applies exactly the committed entries, in
//!   index order, each once per incarnation; no two nodes commit different entries at
//!   one index; a snapshot (made or installed) holds exactly the committed prefix.
//! - **Linearizable reads**: a ReadIndex result is at least the highest commit index
//!   anyone had reached when the read began, so the served state reflects every write
//!   committed before it.

use std::collections::BTreeMap;

use crate::entry::{Entry, Snapshot};
use crate::mem_storage::MemStorage;
use crate::raw_node::{RawNode, Ready};
use crate::read_only::ReadState;
use crate::sim::shadow::{decode_snapshot, digest_step, At, Payload, ShadowLog, Slot};
use crate::sim::violation::{Property, Violation};
use crate::types::{LogIndex, Role, Term};

/// An `(index, term)` seen in some log: its payload and its predecessor's term.
#[derive(Clone, Copy, Debug)]
struct Seen {
    term: Term,
    payload: Payload,
    prev_term: Term,
}

#[derive(Clone, Copy, Debug)]
struct Committed {
    slot: Slot,
    /// The term of the node that first reached a commit index covering it.
    in_term: Term,
    by: usize,
    /// The state-machine digest after applying everything up to here.
    digest: u64,
}

/// The checker's view of one node.
#[derive(Clone, Debug)]
struct NodeView {
    down: bool,
    role: Role,
    term: Term,
    log: ShadowLog,
    commit: LogIndex,
    applied: LogIndex,
}

impl NodeView {
    fn is_leader(&self) -> bool {
        !self.down && self.role == Role::Leader
    }
}

/// Counters of what the checker observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckerStats {
    /// Terms that had a leader.
    pub elections: u64,
    /// The highest commit index reached.
    pub committed: u64,
    /// Entries applied, over all nodes and incarnations.
    pub applied: u64,
    /// ReadIndex results checked.
    pub reads_checked: u64,
    /// Snapshots checked (made by the application or installed from a leader).
    pub snapshots_checked: u64,
}

/// The safety checker for a cluster of `n` nodes (numbered `0..n`).
pub struct Checker {
    step: u64,
    nodes: Vec<NodeView>,
    leaders: BTreeMap<Term, usize>,
    /// `seen[i]`: every `(i, term)` ever stored in a log.
    seen: Vec<Vec<Seen>>,
    /// `committed[i - 1]`: the entry committed at `i`.
    committed: Vec<Committed>,
    /// The commit index when each read began, by read id.
    reads: BTreeMap<u64, LogIndex>,
    stats: CheckerStats,
}

impl Checker {
    /// A checker for `n` fresh nodes with empty logs.
    pub fn new(n: usize) -> Self {
        Checker {
            step: 0,
            nodes: vec![
                NodeView {
                    down: false,
                    role: Role::Follower,
                    term: 0,
                    log: ShadowLog::default(),
                    commit: 0,
                    applied: 0,
                };
                n
            ],
            leaders: BTreeMap::new(),
            seen: vec![Vec::new()],
            committed: Vec::new(),
            reads: BTreeMap::new(),
            stats: CheckerStats::default(),
        }
    }

    /// Sets the step that violations are reported at.
    pub fn set_step(&mut self, step: u64) {
        self.step = step;
    }

    /// What the checker saw so far.
    pub fn stats(&self) -> CheckerStats {
        CheckerStats {
            elections: self.leaders.len() as u64,
            committed: self.committed.len() as u64,
            ..self.stats
        }
    }

    /// The highest commit index any node reached.
    pub fn commit_index(&self) -> LogIndex {
        self.committed.len() as LogIndex
    }

    /// The leader of `term`, if one was seen.
    pub fn leader_of(&self, term: Term) -> Option<usize> {
        self.leaders.get(&term).copied()
    }

    /// The entry committed at `index`: its term and payload.
    pub fn committed_at(&self, index: LogIndex) -> Option<(Term, Payload)> {
        self.committed_rec(index).map(|c| c.slot)
    }

    fn committed_rec(&self, index: LogIndex) -> Option<&Committed> {
        index.checked_sub(1).and_then(|i| self.committed.get(i as usize))
    }

    /// The state-machine digest after applying the committed entries up to `index`.
    pub fn digest_at(&self, index: LogIndex) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.committed_rec(index).map(|c| c.digest)
    }

    fn fail(&self, property: Property, detail: String) -> Result<(), Violation> {
        Err(Violation {
            property,
            step: self.step,
            detail,
        })
    }

    /// Node `i` handed out `rd`; nothing of it is persisted yet. Checks the role
    /// change, the snapshot, and that a leader's new entries only append.
    pub fn on_ready(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let was_leader = self.nodes[i].is_leader();
        let old_term = self.nodes[i].term;
        if let Some(ss) = &rd.soft_state {
            if ss.term < old_term {
                return self.fail(
                    Property::Contract,
                    format!("node {i}'s term went back from {old_term} to {}", ss.term),
                );
            }
            self.nodes[i].role = ss.role;
            self.nodes[i].term = ss.term;
            if ss.role == Role::Leader && !(was_leader && ss.term == old_term) {
                self.on_elected(i, ss.term)?;
            }
        }
        if let Some(s) = &rd.snapshot {
            self.check_snapshot(i, s, "received")?;
        }
        let Some(first) = rd.entries.first() else { return Ok(()) };
        let view = &self.nodes[i];
        for (k, e) in rd.entries.iter().enumerate() {
            if e.index != first.index + k as u64 || e.term > view.term {
                return self.fail(
                    Property::Contract,
                    format!("node {i}: malformed Ready entries at {k}: {e}"),
                );
            }
        }
        let (base, last) = match &rd.snapshot {
            Some(s) if s.meta.index >= view.log.snapshot.0 => {
                let keeps = view.log.term(s.meta.index) == Some(s.meta.term);
                let last = if keeps {
                    view.log.last_index().max(s.meta.index)
                } else {
                    s.meta.index
                };
                (s.meta.index, last)
            }
            _ => (view.log.snapshot.0, view.log.last_index()),
        };
        if first.index <= base || first.index > last + 1 {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i}: Ready entries start at {} over a log of ({base}, {last}]",
                    first.index
                ),
            );
        }
        if was_leader && view.is_leader() && view.term == old_term && first.index <= view.log.last_index() {
            return self.fail(
                Property::LeaderAppendOnly,
                format!(
                    "leader {i} of term {old_term} overwrote its log from index {} (its log ended at {})",
                    first.index,
                    view.log.last_index()
                ),
            );
        }
        Ok(())
    }

    /// Node `i` became leader of `term`.
    fn on_elected(&mut self, i: usize, term: Term) -> Result<(), Violation> {
        if let Some(&other) = self.leaders.get(&term) {
            if other != i {
                return self.fail(
                    Property::ElectionSafety,
                    format!("nodes {other} and {i} were both leader of term {term}"),
                );
            }
        }
        self.leaders.insert(term, i);
        // §5.4: the new leader must hold every entry committed in an earlier term.
        let view = &self.nodes[i];
        for (k, c) in self.committed.iter().enumerate() {
            let index = k as LogIndex + 1;
            if c.in_term < term && !view.log.holds(index, c.slot) {
                return self.fail(
                    Property::LeaderCompleteness,
                    format!(
                        "node {i} became leader of term {term} without entry {index} ({:?} of term {}) \
                         committed in term {} by node {}; it has {:?}",
                        c.slot.1,
                        c.slot.0,
                        c.in_term,
                        c.by,
                        view.log.at(index)
                    ),
                );
            }
        }
        Ok(())
    }

    /// A snapshot node `i` made or received must hold exactly the committed prefix.
    fn check_snapshot(&mut self, i: usize, s: &Snapshot, how: &str) -> Result<(), Violation> {
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

    /// Node `i` persisted `rd`'s snapshot, entries and hard state.
    pub fn on_persisted(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        if let Some(s) = &rd.snapshot {
            self.nodes[i].log.install(s.meta.index, s.meta.term);
        }
        if let Some(first) = rd.entries.first() {
            self.nodes[i].log.truncate_from(first.index);
            for e in &rd.entries {
                self.store(i, e)?;
            }
        }
        if let Some(hs) = &rd.hard_state {
            self.on_commit(i, hs.commit)?;
        }
        Ok(())
    }

    /// Appends one entry to node `i`'s shadow log, checking Log Matching.
    fn store(&mut self, i: usize, e: &Entry) -> Result<(), Violation> {
        let log = &mut self.nodes[i].log;
        let prev_term = log.last_term();
        let payload = Payload::of(e);
        log.push((e.term, payload));
        let index = e.index as usize;
        if self.seen.len() <= index {
            self.seen.resize_with(index + 1, Vec::new);
        }
        match self.seen[index].iter().find(|s| s.term == e.term) {
            None => self.seen[index].push(Seen {
                term: e.term,
                payload,
                prev_term,
            }),
            Some(s) if s.payload == payload && s.prev_term == prev_term => {}
            Some(s) => {
                let s = *s;
                return self.fail(
                    Property::LogMatching,
                    format!(
                        "node {i} stored entry {}/{} = {payload:?} after an entry of term {prev_term}, \
                         but another log has {}/{} = {:?} after an entry of term {}",
                        e.index, e.term, e.index, s.term, s.payload, s.prev_term
                    ),
                );
            }
        }
        Ok(())
    }

    /// Node `i`'s commit index is now `commit`.
    fn on_commit(&mut self, i: usize, commit: LogIndex) -> Result<(), Violation> {
        let view = &self.nodes[i];
        if commit > view.log.last_index() {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} committed {commit} beyond its persisted log ending at {}",
                    view.log.last_index()
                ),
            );
        }
        if commit < view.commit {
            return self.fail(
                Property::StateMachineSafety,
                format!("node {i}'s commit index went back from {} to {commit}", view.commit),
            );
        }
        let (from, term) = (view.commit + 1, view.term);
        for index in from..=commit {
            let At::Entry(slot) = self.nodes[i].log.at(index) else {
                continue;
            };
            match self.committed_rec(index) {
                Some(c) if c.slot == slot => {}
                Some(c) => {
                    let c = *c;
                    return self.fail(
                        Property::StateMachineSafety,
                        format!(
                            "node {i} committed {index} = {:?} of term {}, but node {} committed {:?} of term {} there",
                            slot.1, slot.0, c.by, c.slot.1, c.slot.0
                        ),
                    );
                }
                None if index == self.commit_index() + 1 => {
                    let digest = digest_step(self.committed.last().map_or(0, |c| c.digest), index, slot);
                    self.committed.push(Committed {
                        slot,
                        in_term: term,
                        by: i,
                        digest,
                    });
                    self.check_later_leaders(index, slot, term)?;
                }
                None => {
                    return self.fail(
                        Property::Contract,
                        format!("node {i} committed {index}, past a gap in what anyone committed"),
                    )
                }
            }
        }
        self.nodes[i].commit = commit;
        Ok(())
    }

    /// An entry committed in `term` must be in the log of every leader of a later term.
    fn check_later_leaders(&self, index: LogIndex, slot: Slot, term: Term) -> Result<(), Violation> {
        for (j, v) in self.nodes.iter().enumerate() {
            if v.is_leader() && v.term > term && !v.log.holds(index, slot) {
                return self.fail(
                    Property::LeaderCompleteness,
                    format!(
                        "entry {index} ({:?} of term {}) was committed in term {term}, but leader {j} of term {} lacks it",
                        slot.1, slot.0, v.term
                    ),
                );
            }
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

    /// Node `i` crashed: it is no longer leader, and its state machine is gone.
    pub fn on_crash(&mut self, i: usize) {
        self.nodes[i].down = true;
    }

    /// Node `i` restarted: what its disk holds must be exactly what its Readys and
    /// compactions asked for.
    pub fn on_restart(&mut self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        let store = node.storage();
        let disk = ShadowLog::of_storage(store);
        if disk != self.nodes[i].log {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} restarted with a log ({}, {}] that differs from the one it persisted ({}, {}]",
                    disk.snapshot.0,
                    disk.last_index(),
                    self.nodes[i].log.snapshot.0,
                    self.nodes[i].log.last_index()
                ),
            );
        }
        let hs = store.hard_state();
        let v = &mut self.nodes[i];
        v.down = false;
        v.role = node.role();
        v.term = hs.term;
        v.commit = hs.commit.clamp(disk.snapshot.0, disk.last_index());
        v.applied = disk.snapshot.0;
        Ok(())
    }

    /// Cheap agreement between the node's own view of its log and the checker's
    /// shadow, after each `advance`.
    pub fn cross_check(&self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        let v = &self.nodes[i];
        let last = node.log_last_index();
        let term = node.log_entry(last).map(|e| e.term);
        if last != v.log.last_index() || (last > v.log.snapshot.0 && term != v.log.term(last)) {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i}'s log ends at {last}/{term:?}, but its Readys persisted a log ending at {}/{}",
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
                    format!("node {i} has {real:?} at {index}, but its Readys persisted {slot:?}"),
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
