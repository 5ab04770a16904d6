//! The safety checker. It watches every Ready of every node and keeps, per node, a
//! shadow of its log (what its Readys handed out) and of its disk (what its completed
//! writes hold), and for the whole history: the leader of each term,
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

//!
//! The rules live by concern: `log.rs` (roles, logs, commits), `state.rs` (applies,
//! snapshots, reads), `agreement.rs` (the shadow against the node and its disk).

mod agreement;
mod log;
mod state;

use std::collections::BTreeMap;

use raft_core::{LogIndex, Role, Term};

use crate::shadow::{Payload, ShadowLog, Slot};
use crate::violation::{Property, Violation};

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
    /// The log as the node holds it: everything its Readys handed out (written or
    /// still being written), as of its last restart.
    log: ShadowLog,
    /// What its disk holds: the writes that completed.
    disk: ShadowLog,
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
                    disk: ShadowLog::default(),
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
}
