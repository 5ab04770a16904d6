//! The linearizability checker: pure, no IO.
//!
//! Each key is a register with `put`, `get` and `cas`, checked on its own (a history
//! is linearizable iff each key's sub-history is: P-compositionality, Herlihy & Wing).
//! The search is Wing & Gong's as Lowe improved it (the algorithm behind Knossos and
//! Porcupine): walk the calls and returns in time order, linearize a pending call when
//! the model accepts its answer, backtrack at a return whose call is not linearized yet,
//! and remember every (set of linearized ops, register value) already explored so no
//! configuration is searched twice.
//!
//! An op whose outcome is unknown returns at infinity and may be linearized with its
//! effect or skipped (it never took effect). Before the search, the unknown ops that
//! cannot matter are dropped: unknown reads, and unknown writes whose value nobody ever
//! saw nor expected (dropping them changes no verdict: such a write, if applied, must be
//! overwritten before anyone looks, so skipping it is as good).
//!
//! When a key fails, [`explain`] finds the shortest prefix of its history (in invocation
//! order) that is already not linearizable: the op that ends it is the culprit. If the
//! culprit is one of the reads made after the faults were healed, an acknowledged write
//! was lost (or an unacknowledged one appeared): [`Failure::lost_write`].

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::history::{Call, Op, Outcome, Ret};

/// How many configurations one key's search may explore before giving up.
pub const BUDGET: usize = 4_000_000;

/// The verdict on a whole history.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Keys checked.
    pub keys: usize,
    /// Ops that entered the search (failed and dropped unknown ops excluded).
    pub ops_checked: usize,
    /// The keys whose history is not linearizable.
    pub failures: Vec<Failure>,
    /// The keys whose search exceeded [`BUDGET`] (no verdict).
    pub gave_up: Vec<String>,
}

impl Verdict {
    /// Whether every key's history is linearizable.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.gave_up.is_empty()
    }
}

/// Why one key's history is not linearizable.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The key.
    pub key: String,
    /// The op (an index into the history) that makes the shortest failing prefix fail.
    pub culprit: usize,
    /// Ops around it worth reading: the ones overlapping it and the last writes before.
    pub context: Vec<usize>,
    /// The culprit is a final read: an acknowledged write was lost.
    pub lost_write: bool,
}

impl Failure {
    /// A few lines naming the key, the culprit and its context.
    pub fn describe(&self, history: &[Op]) -> String {
        let what = if self.lost_write {
            "LOST ACKNOWLEDGED WRITE: the read after healing contradicts the acknowledged writes"
        } else {
            "NOT LINEARIZABLE: no order of the ops explains this answer"
        };
        let mut out = format!("key {}: {what}\n  culprit: {}\n", self.key, history[self.culprit]);
        for &i in &self.context {
            out.push_str(&format!("  context: {}\n", history[i]));
        }
        out
    }
}

/// Checks every key of `history`.
pub fn check(history: &[Op]) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i);
    }
    let mut verdict = Verdict {
        keys: by_key.len(),
        ..Verdict::default()
    };
    for (key, ops) in by_key {
        let problem = Problem::new(history, &ops);
        verdict.ops_checked += problem.ops.len();
        match problem.search(BUDGET) {
            Some(true) => {}
            Some(false) => verdict.failures.push(explain(history, &ops)),
            None => verdict.gave_up.push(key.to_string()),
        }
    }
    verdict
}

/// Whether the ops `ops` (indices into `history`, all of one key) are linearizable;
/// `None` if the search exceeded `budget` configurations.
pub fn linearizable(history: &[Op], ops: &[usize], budget: usize) -> Option<bool> {
    Problem::new(history, ops).search(budget)
}

/// Finds the shortest failing prefix of one key's ops (which must fail as a whole).
pub fn explain(history: &[Op], ops: &[usize]) -> Failure {
    let mut sorted: Vec<usize> = ops
        .iter()
        .copied()
        .filter(|&i| history[i].outcome != Outcome::Fail)
        .collect();
    sorted.sort_by_key(|&i| (history[i].invoke, i));
    let mut ends: Vec<(u64, usize)> = sorted
        .iter()
        .filter_map(|&i| match history[i].outcome {
            Outcome::Ok { complete, .. } => Some((complete, i)),
            _ => None,
        })
        .collect();
    ends.sort_unstable();
    // The history as it stood at time `t`: the ops invoked by then, those that had not
    // completed turned unknown. A linearizable history is linearizable at every `t`,
    // so the first `t` (a completion) at which it fails is found by bisection.
    let fails_at = |t: u64| {
        let prefix: Vec<Op> = sorted
            .iter()
            .filter(|&&i| history[i].invoke <= t)
            .map(|&i| {
                let mut op = history[i].clone();
                if matches!(op.outcome, Outcome::Ok { complete, .. } if complete > t) {
                    op.outcome = Outcome::Unknown;
                }
                op
            })
            .collect();
        let all: Vec<usize> = (0..prefix.len()).collect();
        linearizable(&prefix, &all, BUDGET) != Some(true)
    };
    let (mut lo, mut hi) = (0, ends.len().saturating_sub(1));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails_at(ends[mid].0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (end, culprit) = ends
        .get(lo)
        .copied()
        .unwrap_or((0, sorted.first().copied().unwrap_or(0)));
    let c = &history[culprit];
    let overlaps = |i: usize| match history[i].outcome {
        Outcome::Ok { complete, .. } => complete >= c.invoke,
        _ => true,
    };
    let before: Vec<usize> = sorted
        .iter()
        .copied()
        .filter(|&i| i != culprit && history[i].invoke <= end)
        .collect();
    let mut context: Vec<usize> = before
        .iter()
        .copied()
        .filter(|&i| overlaps(i) && (history[i].is_write() || history[i].outcome != Outcome::Unknown))
        .collect();
    let earlier_writes: Vec<usize> = before
        .iter()
        .copied()
        .filter(|&i| history[i].is_acknowledged_write() && !overlaps(i))
        .collect();
    context.extend(earlier_writes.iter().rev().take(3).rev());
    context.sort_by_key(|&i| (history[i].invoke, i));
    context.dedup();
    context.truncate(12);
    Failure {
        key: c.key.clone(),
        culprit,
        context,
        lost_write: c.final_read,
    }
}

/// An op of one key, its values interned.
#[derive(Clone, Copy, Debug)]
enum Step {
    Put {
        value: u32,
        previous: Option<u32>,
    },
    Get {
        value: Option<u32>,
    },
    Cas {
        expected: Option<u32>,
        new: u32,
        ok: bool,
        previous: Option<u32>,
    },
}

#[derive(Clone, Copy, Debug)]
struct KeyOp {
    step: Step,
    invoke: u64,
    /// `u64::MAX` when unknown.
    complete: u64,
    unknown: bool,
}

/// One key's ops, ready for the search.
struct Problem {
    ops: Vec<KeyOp>,
}

impl Problem {
    fn new(history: &[Op], indices: &[usize]) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |s: &Option<String>| -> Option<u32> {
            let s = s.as_deref()?;
            let n = ids.len() as u32;
            Some(*ids.entry(s.to_string()).or_insert(n))
        };
        // Values someone saw or expected: only unknown writes of these can matter.
        let mut mentioned: HashSet<&str> = HashSet::new();
        for &i in indices {
            let op = &history[i];
            if let Call::Cas { expected: Some(e), .. } = &op.call {
                mentioned.insert(e);
            }
            if let Outcome::Ok { ret, .. } = &op.outcome {
                let (Ret::Put { previous: Some(v) } | Ret::Get { value: Some(v) } | Ret::Cas { previous: Some(v), .. }) =
                    ret
                else {
                    continue;
                };
                mentioned.insert(v);
            }
        }
        let mut ops = Vec::new();
        for &i in indices {
            let op = &history[i];
            let (complete, ret) = match &op.outcome {
                Outcome::Fail => continue,
                Outcome::Unknown => match &op.call {
                    Call::Get => continue,
                    Call::Put { value: v } | Call::Cas { new: v, .. } if !mentioned.contains(v.as_str()) => continue,
                    _ => (u64::MAX, None),
                },
                Outcome::Ok { complete, ret } => (*complete, Some(ret)),
            };
            let step = match (&op.call, ret) {
                (Call::Put { value }, None) => Step::Put {
                    value: intern(&Some(value.clone())).unwrap_or(0),
                    previous: None,
                },
                (Call::Put { value }, Some(Ret::Put { previous })) => Step::Put {
                    value: intern(&Some(value.clone())).unwrap_or(0),
                    previous: intern(previous),
                },
                (Call::Get, Some(Ret::Get { value })) => Step::Get { value: intern(value) },
                (Call::Cas { expected, new }, ret) => {
                    let (ok, previous) = match ret {
                        Some(Ret::Cas { ok, previous }) => (*ok, intern(previous)),
                        _ => (false, None),
                    };
                    Step::Cas {
                        expected: intern(expected),
                        new: intern(&Some(new.clone())).unwrap_or(0),
                        ok,
                        previous,
                    }
                }
                // An answer that does not fit the call: impossible to linearize.
                _ => Step::Get { value: Some(u32::MAX) },
            };
            ops.push(KeyOp {
                step,
                invoke: op.invoke,
                complete,
                unknown: complete == u64::MAX,
            });
        }
        Problem { ops }
    }

    /// The register after `op` from `state`, if the model allows it; `skip` leaves an
    /// unknown op out.
    fn step(&self, state: Option<u32>, op: usize, skip: bool) -> Option<Option<u32>> {
        let o = &self.ops[op];
        if skip {
            return o.unknown.then_some(state);
        }
        match o.step {
            Step::Put { value, previous } => (o.unknown || previous == state).then_some(Some(value)),
            Step::Get { value } => (value == state).then_some(state),
            Step::Cas {
                expected,
                new,
                ok,
                previous,
            } => {
                let applies = state == expected;
                if o.unknown {
                    return Some(if applies { Some(new) } else { state });
                }
                (previous == state && ok == applies).then_some(if ok { Some(new) } else { state })
            }
        }
    }

    /// The WGL search over the calls and returns, as a doubly linked list.
    fn search(&self, budget: usize) -> Option<bool> {
        let n = self.ops.len();
        // Entries 1..=2n: op i's call and return; 0 is the head, NIL ends the list.
        const NIL: usize = usize::MAX;
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
        for (i, o) in self.ops.iter().enumerate() {
            events.push((o.invoke, true, i));
            events.push((o.complete, false, i));
        }
        // Calls before returns at the same instant: touching intervals overlap.
        events.sort_by_key(|&(t, call, i)| (t, !call, i));
        let len = events.len() + 1;
        let (mut next, mut prev) = (vec![NIL; len], vec![NIL; len]);
        let mut is_call = vec![false; len];
        let mut op_of = vec![0; len];
        let mut matching = vec![NIL; len];
        let mut call_entry = vec![NIL; n];
        for (k, &(_, call, i)) in events.iter().enumerate() {
            let e = k + 1;
            prev[e] = k;
            next[k] = e;
            is_call[e] = call;
            op_of[e] = i;
            if call {
                call_entry[i] = e;
            } else {
                matching[call_entry[i]] = e;
            }
        }
        let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
            for x in [e, matching[e]] {
                next[prev[x]] = next[x];
                if next[x] != NIL {
                    prev[next[x]] = prev[x];
                }
            }
        };
        let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
            for x in [matching[e], e] {
                next[prev[x]] = x;
                if next[x] != NIL {
                    prev[next[x]] = x;
                }
            }
        };
        let mut linearized = vec![0u64; n.div_ceil(64)];
        let mut seen: HashSet<(Vec<u64>, Option<u32>)> = HashSet::new();
        let mut stack: Vec<(usize, Option<u32>, bool)> = Vec::new();
        let mut state: Option<u32> = None;
        let (mut entry, mut skip_next) = (next[0], false);
        while next[0] != NIL {
            if entry == NIL {
                return Some(false); // unreachable: a pending call's return follows it
            }
            if !is_call[entry] {
                let Some((e, s, skipped)) = stack.pop() else {
                    return Some(false);
                };
                let op = op_of[e];
                linearized[op / 64] &= !(1 << (op % 64));
                state = s;
                unlift(&mut next, &mut prev, e);
                if skipped {
                    (entry, skip_next) = (next[e], false);
                } else {
                    (entry, skip_next) = (e, true);
                }
                continue;
            }
            let op = op_of[entry];
            let mut moved = false;
            for skip in [false, true] {
                if skip_next && !skip {
                    continue; // the apply branch was explored already
                }
                let Some(after) = self.step(state, op, skip) else {
                    continue;
                };
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), after)) {
                    if seen.len() > budget {
                        return None;
                    }
                    stack.push((entry, state, skip));
                    state = after;
                    lift(&mut next, &mut prev, entry);
                    (entry, skip_next, moved) = (next[0], false, true);
                    break;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            if !moved {
                (entry, skip_next) = (next[entry], false);
            }
        }
        Some(true)
    }
}

/// Counts per kind (`put`, `get`, `cas`) of ok, failed and unknown ops.
pub fn counts(history: &[Op]) -> BTreeMap<&'static str, [usize; 3]> {
    let mut c: BTreeMap<&'static str, [usize; 3]> = BTreeMap::new();
    for op in history {
        let slot = match op.outcome {
            Outcome::Ok { .. } => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        };
        c.entry(op.kind()).or_default()[slot] += 1;
    }
    c
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
