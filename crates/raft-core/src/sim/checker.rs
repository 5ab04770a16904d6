//! The safety checker. It watches every Ready of every node and keeps, per node, a
//! shadow of the persisted log, and for the whole history: the leader of each term,
//! every `(index, term)` ever stored with its payload and predecessor's term, every
//! committed entry with the term it was committed in, and the commit index when each
//! read began. Each observation costs O(1) per entry it touches, so the properties of
//! the paper (Figure 3) are checked after every input without rescanning logs:
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
//!   one index.
//! - **Linearizable reads**: a ReadIndex result is at least the highest commit index
//!   anyone had reached when the read began, so the served state reflects every write
//!   committed before it.

use std::collections::BTreeMap;
use std::fmt;

use crate::entry::{Entry, EntryPayload};
use crate::mem_storage::MemStorage;
use crate::raw_node::{RawNode, Ready};
use crate::read_only::ReadState;
use crate::storage::Storage;
use crate::types::{LogIndex, Role, Term};

/// A property the checker verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// At most one leader per term.
    ElectionSafety,
    /// A leader never overwrites or deletes entries in its log during its term.
    LeaderAppendOnly,
    /// Same index and term means the same entry and the same log before it.
    LogMatching,
    /// Committed entries are in the logs of all later leaders.
    LeaderCompleteness,
    /// Nodes apply the same entries at the same indexes, in order, once.
    StateMachineSafety,
    /// A read reflects every write committed before it began.
    LinearizableReads,
    /// After the faults stop, a leader is elected and proposals commit in bounded time.
    Liveness,
    /// The core broke its own API contract (a malformed Ready, a log that differs
    /// from what it asked the driver to persist, an error on valid input).
    Contract,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A broken property, where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: Property,
    /// The simulation step (tick) it was detected at.
    pub step: u64,
    /// What exactly went wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated at step {}: {}", self.property, self.step, self.detail)
    }
}

impl std::error::Error for Violation {}

/// What an entry carries, reduced to what the checker compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A leader's no-op.
    Noop,
    /// A client command: the simulator's commands are 8-byte ids; other payloads are
    /// hashed.
    Command(u64),
    /// A membership change.
    Membership,
}

impl Payload {
    /// The payload of an entry.
    pub fn of(e: &Entry) -> Self {
        match &e.payload {
            EntryPayload::Noop => Payload::Noop,
            EntryPayload::Command(b) => Payload::Command(match <[u8; 8]>::try_from(&b[..]) {
                Ok(id) => u64::from_le_bytes(id),
                // FNV-1a, so that any other command still compares by content.
                Err(_) => b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
                    (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
                }),
            }),
            EntryPayload::Membership(_) => Payload::Membership,
        }
    }
}

/// One log slot as the checker sees it.
type Slot = (Term, Payload);

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
}

/// The checker's view of one node.
#[derive(Clone, Debug)]
struct NodeView {
    up: bool,
    role: Role,
    term: Term,
    /// The persisted log (`log[i - 1]` is index `i`), as the node's Readys built it.
    log: Vec<Slot>,
    commit: LogIndex,
    applied: LogIndex,
}

impl NodeView {
    fn slot(&self, index: LogIndex) -> Option<Slot> {
        index.checked_sub(1).and_then(|i| self.log.get(i as usize)).copied()
    }

    fn last_index(&self) -> LogIndex {
        self.log.len() as LogIndex
    }

    fn is_leader(&self, term: Term) -> bool {
        self.up && self.role == Role::Leader && self.term == term
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
    applied_total: u64,
    reads_checked: u64,
}

impl Checker {
    /// A checker for `n` fresh nodes with empty logs.
    pub fn new(n: usize) -> Self {
        let view = NodeView {
            up: true,
            role: Role::Follower,
            term: 0,
            log: Vec::new(),
            commit: 0,
            applied: 0,
        };
        Checker {
            step: 0,
            nodes: vec![view; n],
            leaders: BTreeMap::new(),
            seen: vec![Vec::new()],
            committed: Vec::new(),
            reads: BTreeMap::new(),
            applied_total: 0,
            reads_checked: 0,
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
            applied: self.applied_total,
            reads_checked: self.reads_checked,
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
        index
            .checked_sub(1)
            .and_then(|i| self.committed.get(i as usize))
            .map(|c| c.slot)
    }

    fn fail(&self, property: Property, detail: String) -> Result<(), Violation> {
        Err(Violation {
            property,
            step: self.step,
            detail,
        })
    }

    /// Node `i` handed out `rd`; nothing of it is persisted yet. Checks the role
    /// change and that a leader's new entries only append.
    pub fn on_ready(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let was_leader = self.nodes[i].role == Role::Leader;
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
        let view = &self.nodes[i];
        let Some(first) = rd.entries.first() else { return Ok(()) };
        for (k, e) in rd.entries.iter().enumerate() {
            if e.index != first.index + k as u64 || e.term > view.term {
                return self.fail(
                    Property::Contract,
                    format!("node {i}: malformed Ready entries at {k}: {e}"),
                );
            }
        }
        if first.index == 0 || first.index > view.last_index() + 1 {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i}: Ready entries start at {} after a log ending at {}",
                    first.index,
                    view.last_index()
                ),
            );
        }
        if was_leader && view.is_leader(old_term) && first.index <= view.last_index() {
            return self.fail(
                Property::LeaderAppendOnly,
                format!(
                    "leader {i} of term {old_term} overwrote its log from index {} (its log ended at {})",
                    first.index,
                    view.last_index()
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
            if c.in_term < term && view.slot(index) != Some(c.slot) {
                return self.fail(
                    Property::LeaderCompleteness,
                    format!(
                        "node {i} became leader of term {term} without entry {index} ({:?} of term {}) \
                         committed in term {} by node {}; it has {:?}",
                        c.slot.1,
                        c.slot.0,
                        c.in_term,
                        c.by,
                        view.slot(index)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Node `i` persisted `rd`'s entries and hard state.
    pub fn on_persisted(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        if let Some(first) = rd.entries.first() {
            self.nodes[i].log.truncate((first.index - 1) as usize);
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
        let view = &mut self.nodes[i];
        let prev_term = view.log.last().map_or(0, |s| s.0);
        let payload = Payload::of(e);
        view.log.push((e.term, payload));
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
        if commit > view.last_index() {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} committed {commit} beyond its persisted log ending at {}",
                    view.last_index()
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
            let Some(slot) = self.nodes[i].slot(index) else { break };
            match self.committed.get(index as usize - 1) {
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
                None => {
                    self.committed.push(Committed {
                        slot,
                        in_term: term,
                        by: i,
                    });
                    self.check_later_leaders(index, slot, term)?;
                }
            }
        }
        self.nodes[i].commit = commit;
        Ok(())
    }

    /// An entry committed in `term` must be in the log of every leader of a later term.
    fn check_later_leaders(&self, index: LogIndex, slot: Slot, term: Term) -> Result<(), Violation> {
        for (j, v) in self.nodes.iter().enumerate() {
            if v.up && v.role == Role::Leader && v.term > term && v.slot(index) != Some(slot) {
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
        self.applied_total += 1;
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
        self.reads_checked += 1;
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
        let v = &mut self.nodes[i];
        v.up = false;
        v.role = Role::Follower;
    }

    /// Node `i` restarted from `store`: what it persisted must be exactly what its
    /// Readys asked for.
    pub fn on_restart(&mut self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        let store = node.storage();
        let v = &self.nodes[i];
        let last = store.last_index().unwrap_or(0);
        let first = store.first_index().unwrap_or(1);
        let matches =
            last == v.last_index() && (first..=last).all(|index| store.term(index).ok() == v.slot(index).map(|s| s.0));
        if !matches {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} restarted with a log ..={last} that differs from the one it persisted (..={})",
                    v.last_index()
                ),
            );
        }
        let hs = store.hard_state();
        let v = &mut self.nodes[i];
        v.up = true;
        v.role = node.role();
        v.term = hs.term;
        v.commit = hs.commit.min(last);
        v.applied = first - 1;
        Ok(())
    }

    /// Cheap agreement between the node's own view of its log and the checker's
    /// shadow, after each `advance`.
    pub fn cross_check(&self, i: usize, node: &RawNode<MemStorage>) -> Result<(), Violation> {
        let v = &self.nodes[i];
        let last = node.log_last_index();
        let term = node.log_entry(last).map_or(0, |e| e.term);
        if last != v.last_index() || (last > 0 && Some(term) != v.slot(last).map(|s| s.0)) {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i}'s log ends at {last}/{term}, but its Readys persisted a log ending at {:?}",
                    v.log.last()
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
        let v = &self.nodes[i];
        for index in 1..=v.last_index() {
            let real = node.log_entry(index).map(|e| (e.term, Payload::of(&e)));
            if real.is_some() && real != v.slot(index) {
                return self.fail(
                    Property::Contract,
                    format!(
                        "node {i} has {real:?} at {index}, but its Readys persisted {:?}",
                        v.slot(index)
                    ),
                );
            }
        }
        Ok(())
    }

    /// The persisted log of node `i` (term and payload per index from 1).
    pub fn log_of(&self, i: usize) -> &[(Term, Payload)] {
        &self.nodes[i].log
    }

    /// The applied index of node `i`'s state machine.
    pub fn applied_of(&self, i: usize) -> LogIndex {
        self.nodes[i].applied
    }
}
