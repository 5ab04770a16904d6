//! A storage's whole readable state as one value, the operations tests drive, and the
//! states a crash in the middle of an operation may leave.

use bytes::Bytes;
use raft_core::{Entry, EntryPayload, HardState, LogIndex, Snapshot, Storage, Term};
use raft_storage::LogStore;

/// Everything a storage reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub hard_state: HardState,
    pub snapshot: Snapshot,
    /// The entries after the snapshot.
    pub entries: Vec<Entry>,
}

impl View {
    pub fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot.meta.index, |e| e.index)
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.meta.term, |e| e.term)
    }

    /// One line, for failure messages.
    pub fn describe(&self) -> String {
        let runs: Vec<String> = self.entries.iter().map(|e| format!("{}@{}", e.index, e.term)).collect();
        format!(
            "hs=t{}/{:?}/c{} snap={}@{} log=[{}]",
            self.hard_state.term,
            self.hard_state.vote.as_ref().map(|v| v.as_str()),
            self.hard_state.commit,
            self.snapshot.meta.index,
            self.snapshot.meta.term,
            runs.join(" ")
        )
    }
}

/// Reads a storage's whole state (panics on a read error).
pub fn view<S: Storage>(s: &S) -> View {
    let first = s.first_index().unwrap();
    let last = s.last_index().unwrap();
    let entries = s.entries(first, last + 1, u64::MAX).unwrap();
    for e in &entries {
        assert_eq!(
            s.term(e.index).unwrap(),
            e.term,
            "term({}) disagrees with the entry",
            e.index
        );
    }
    View {
        hard_state: s.initial_state().unwrap().hard_state,
        snapshot: s.snapshot().unwrap(),
        entries,
    }
}

/// What a test does to a storage.
#[derive(Clone, Debug)]
pub enum Op {
    Append(Vec<Entry>),
    HardState(HardState),
    Snapshot(Snapshot),
    Reopen,
}

impl Op {
    /// Applies the op to a storage (`Reopen` is the caller's business).
    pub fn apply<S: LogStore>(&self, s: &mut S) {
        match self {
            Op::Append(es) => s.append(es).unwrap(),
            Op::HardState(hs) => s.set_hard_state(hs).unwrap(),
            Op::Snapshot(snap) => s.save_snapshot(snap).unwrap(),
            Op::Reopen => {}
        }
    }

    /// One line, for failure messages.
    pub fn describe(&self) -> String {
        match self {
            Op::Append(es) => match (es.first(), es.last()) {
                (Some(a), Some(b)) => format!("append {}..={} @{}", a.index, b.index, b.term),
                _ => "append []".into(),
            },
            Op::HardState(hs) => format!("hard state t{} c{}", hs.term, hs.commit),
            Op::Snapshot(s) => format!("snapshot {}@{}", s.meta.index, s.meta.term),
            Op::Reopen => "reopen".into(),
        }
    }
}

/// The states a crash during `op` (which took `before` to `after`) may leave: the old
/// one, the new one, and for an append starting at `i`, the old log cut anywhere from
/// `i` on or followed by any prefix of the new entries.
pub fn crash_states(before: &View, op: &Op, after: &View) -> Vec<View> {
    let mut out = vec![before.clone(), after.clone()];
    if let Op::Append(es) = op {
        let es: Vec<Entry> = es
            .iter()
            .filter(|e| e.index > before.snapshot.meta.index)
            .cloned()
            .collect();
        if let Some(first) = es.first() {
            let i = first.index;
            for m in i - 1..=before.last_index() {
                let mut v = before.clone();
                v.entries.retain(|e| e.index <= m);
                out.push(v);
            }
            for j in 0..=es.len() {
                let mut v = before.clone();
                v.entries.retain(|e| e.index < i);
                v.entries.extend_from_slice(&es[..j]);
                out.push(v);
            }
        }
    }
    out
}

/// An entry whose payload size varies with its index (so records straddle sectors).
pub fn entry(index: LogIndex, term: Term) -> Entry {
    let len = 40 + (index as usize * 37) % 160;
    let data: Vec<u8> = (0..len).map(|k| (index as usize * 31 + k) as u8).collect();
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from(data)),
    }
}

/// Entries `range` of `term`.
pub fn entries(range: std::ops::Range<LogIndex>, term: Term) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}
