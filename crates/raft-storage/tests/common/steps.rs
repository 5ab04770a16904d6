//! Random operations as a Raft driver would issue them: terms only grow, committed
//! entries are never overwritten, a leader's snapshot is installed only beyond the
//! commit index.

use proptest::prelude::*;
use raft_core::{HardState, MemStorage, Membership, Snapshot, SnapshotMeta, Storage};

use super::model::{entries, Op};

/// One random step, turned into an [`Op`] against the current state by [`to_op`].
#[derive(Clone, Debug)]
pub enum Step {
    /// Append `len` entries starting `back` entries before the end (clamped to the log).
    Append {
        back: u64,
        len: u64,
        new_term: bool,
    },
    HardState {
        vote: bool,
    },
    /// Snapshot one's own log at a point (a fraction of the way through it).
    Compact {
        at: u8,
    },
    /// Install a leader's snapshot: at a point of the log with a newer term, or beyond it.
    Install {
        at: u8,
        beyond: bool,
    },
    Reopen,
}

/// A random step.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u64..6, 0u64..9, any::<bool>()).prop_map(|(back, len, new_term)| Step::Append { back, len, new_term }),
        2 => any::<bool>().prop_map(|vote| Step::HardState { vote }),
        2 => any::<u8>().prop_map(|at| Step::Compact { at }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(at, beyond)| Step::Install { at, beyond }),
        1 => Just(Step::Reopen),
    ]
}

/// Turns a step into an op on the model's current state (terms only grow, as in Raft).
pub fn to_op(step: &Step, model: &MemStorage, term: &mut u64) -> Op {
    let first = model.first_index().unwrap();
    let last = model.last_index().unwrap();
    let point = |at: u8| first - 1 + (last + 1 - first) * u64::from(at) / 255;
    let snapshot = |index, term| Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters([format!("n{index}")]),
        },
        data: bytes::Bytes::from(format!("{index}@{term}")),
    };
    match *step {
        Step::Append { back, len, new_term } => {
            *term += u64::from(new_term);
            // Raft never overwrites a committed entry.
            let commit = model.initial_state().unwrap().hard_state.commit;
            let start = (last + 1).saturating_sub(back).max(first).max(commit + 1);
            Op::Append(entries(start..start + len, *term))
        }
        Step::HardState { vote } => Op::HardState(HardState {
            term: *term,
            vote: vote.then(|| "n1".into()),
            commit: point(128).max(model.initial_state().unwrap().hard_state.commit),
        }),
        Step::Compact { at } => {
            let index = point(at);
            Op::Snapshot(snapshot(index, model.term(index).unwrap()))
        }
        Step::Install { at, beyond } => {
            *term += 1;
            // Raft installs a leader's snapshot only beyond its commit index.
            let commit = model.initial_state().unwrap().hard_state.commit;
            let index = if beyond {
                last + 1 + u64::from(at % 7)
            } else {
                point(at).max(commit + 1)
            };
            Op::Snapshot(snapshot(index, *term))
        }
        Step::Reopen => Op::Reopen,
    }
}
