//! The node's view of its log: the stable part in [`Storage`] followed by the
//! unstable part (entries and snapshot received but not yet persisted by the driver),
//! plus the commit and apply indexes.

use tracing::error;

use crate::bounds::MAX_INDEX;
use crate::entry::{Entry, Snapshot};
use crate::error::StorageError;
use crate::storage::{limit_size, Storage};
use crate::types::{LogIndex, Term};

/// Entries and a snapshot the driver has not persisted yet.
///
/// Invariants: `entries[i].index == offset + i`; with a snapshot,
/// `offset == snapshot.meta.index + 1` (the snapshot replaces everything before it).
#[derive(Debug, Default)]
struct Unstable {
    /// A snapshot from the leader to persist and install, ahead of `entries`; `None`
    /// once the driver reported it durable.
    snapshot: Option<Snapshot>,
    /// Entries not yet reported durable, contiguous from `offset`
    /// (`entries[0].index == offset`).
    entries: Vec<Entry>,
    /// The index the unstable entries start at: everything before it is durable (in
    /// the storage or its snapshot), so `offset - 1` is the persisted index. Entries at
    /// and after it that the storage still holds are stale (about to be overwritten).
    offset: LogIndex,
    /// Entries up to this index were handed to the driver in a Ready and are being
    /// persisted (a driver with asynchronous writes); later ones are new and go out in
    /// the next Ready. Never beyond the last index: an overwrite lowers it.
    handed: LogIndex,
    /// The snapshot was handed to the driver and is being persisted (false while
    /// there is none).
    snapshot_handed: bool,
}

/// The node's log: the stable part in the storage, the unstable part after it, and the
/// indexes that say how far the log is committed and applied.
///
/// Invariants, outside a planted bug: `applied <= applying <= committed <=
/// last_index()`; `applying <= persisted_index()` (only durable entries are applied);
/// `committed` never decreases; and `first_index() - 1 <= applied`, except while a
/// snapshot received from the leader is unstable (`applied` jumps to its index once
/// the driver persisted it).
pub(crate) struct RaftLog<S> {
    /// The stable part: every entry before `unstable.offset` is durable there (or
    /// compacted into its snapshot). The driver writes into it; the log reads it.
    pub(crate) store: S,
    /// What was appended or received but is not durable yet.
    unstable: Unstable,
    /// The highest index known to be committed (replicated on a quorum in the
    /// leader's term, §5.3/§5.4.2): what the application may apply once durable here.
    pub(crate) committed: LogIndex,
    /// The highest index the application has applied (or that its snapshot covers).
    pub(crate) applied: LogIndex,
    /// The highest index handed to the application in a Ready (at least `applied`):
    /// a driver that applies asynchronously reports `applied` later.
    pub(crate) applying: LogIndex,
}

impl<S: Storage> RaftLog<S> {
    pub(crate) fn new(store: S, commit: LogIndex, applied: LogIndex) -> Result<Self, StorageError> {
        let first = store.first_index()?;
        let last = store.last_index()?;
        // A storage's word is input too: a log that cannot be would overflow below.
        if first == 0 || last < first - 1 || last > MAX_INDEX {
            return Err(StorageError::ImpossibleLog { first, last });
        }
        let snap_index = first - 1;
        let committed = commit.clamp(snap_index, last);
        if committed != commit {
            error!(
                commit,
                last, "persisted commit index is beyond the log; using {committed}"
            );
        }
        let applied = applied.clamp(snap_index, committed);
        Ok(RaftLog {
            store,
            unstable: Unstable {
                offset: last + 1,
                handed: last,
                ..Unstable::default()
            },
            committed,
            applied,
            applying: applied,
        })
    }

    pub(crate) fn first_index(&self) -> LogIndex {
        match &self.unstable.snapshot {
            Some(s) => s.meta.index.saturating_add(1),
            // Never 0: index 0 is the empty prefix every log has (and `first - 1` below
            // must not wrap on a storage that says otherwise).
            None => self.store.first_index().map(|i| i.max(1)).unwrap_or_else(|e| {
                error!(%e, "storage failed to report its first index");
                1
            }),
        }
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        if let Some(e) = self.unstable.entries.last() {
            return e.index;
        }
        self.unstable.offset - 1
    }

    /// The term of the entry at `index`, or `None` if it was compacted away or does not
    /// exist (or the storage failed, which is logged).
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        let u = &self.unstable;
        if index >= u.offset {
            return u.entries.get((index - u.offset) as usize).map(|e| e.term);
        }
        if let Some(s) = &u.snapshot {
            return if index == s.meta.index { Some(s.meta.term) } else { None };
        }
        match self.store.term(index) {
            Ok(t) => Some(t),
            Err(StorageError::Compacted(_)) | Err(StorageError::Unavailable(_)) => None,
            Err(e) => {
                error!(%e, index, "storage failed to read a term");
                None
            }
        }
    }

    pub(crate) fn last_term(&self) -> Term {
        self.term(self.last_index()).unwrap_or(0)
    }

    pub(crate) fn match_term(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// §5.4.1: a candidate's log is at least as up to date as ours.
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// The entries in `[low, high)`, at most `max_bytes` (but at least one) and
    /// `max_count`. `Err(Compacted)` if `low` is behind the log.
    pub(crate) fn entries(
        &self,
        low: LogIndex,
        high: LogIndex,
        max_bytes: u64,
        max_count: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let high = high
            .min(self.last_index() + 1)
            .min(low.saturating_add(max_count as u64));
        if low >= high {
            return Ok(Vec::new());
        }
        if low < self.first_index() {
            return Err(StorageError::Compacted(low));
        }
        let u = &self.unstable;
        let mut out = if low < u.offset {
            self.store.entries(low, high.min(u.offset), max_bytes)?
        } else {
            Vec::new()
        };
        if high > u.offset && (out.is_empty() || out.last().map(|e| e.index + 1) == Some(u.offset)) {
            let from = low.max(u.offset);
            out.extend_from_slice(&u.entries[(from - u.offset) as usize..(high - u.offset) as usize]);
        }
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    /// The first index in `entries` whose term differs from ours (0 if none): the
    /// point from which a follower must replace its log.
    fn find_conflict(&self, entries: &[Entry]) -> LogIndex {
        entries
            .iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map_or(0, |e| e.index)
    }

    /// The largest index at or below `index` whose term is at most `term`, with its
    /// term: the basis of fast backtracking (both sides use it).
    pub(crate) fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> (LogIndex, Term) {
        let floor = self.first_index() - 1;
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Some(t) if t <= term => return (i, t),
                Some(_) if i > floor => i -= 1,
                _ => return (i, 0),
            }
        }
    }

    /// §5.3: append `entries` after `prev_index` if our log has `prev_term` there.
    /// Returns the index of the last new entry and, if the log changed, the position
    /// in `entries` from which they were appended; `None` if the check failed.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: LogIndex,
        prev_term: Term,
        commit: LogIndex,
        entries: &[Entry],
        skip_match_check: bool,
    ) -> Option<(LogIndex, Option<usize>)> {
        let matched = self.match_term(prev_index, prev_term)
            || (skip_match_check && prev_index <= self.last_index() && prev_index >= self.first_index() - 1);
        if !matched {
            return None;
        }
        let last_new = prev_index + entries.len() as u64;
        let conflict = self.find_conflict(entries);
        let mut appended = None;
        if conflict != 0 {
            if conflict <= self.committed && !skip_match_check {
                error!(
                    conflict,
                    committed = self.committed,
                    "leader sent entries that conflict with committed ones; refusing them"
                );
                return None;
            }
            let start = (conflict - (prev_index + 1)) as usize;
            self.append(&entries[start..]);
            appended = Some(start);
        }
        self.commit_to(commit.min(last_new));
        Some((last_new, appended))
    }

    /// Appends entries that start right after, or overwrite part of, the log.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let after = first.index;
        let u = &mut self.unstable;
        // Entries from `after` on are new, even if an earlier Ready handed out older
        // ones at those indexes (they are being overwritten).
        u.handed = u.handed.min(after - 1);
        if after == u.offset + u.entries.len() as u64 {
            u.entries.extend_from_slice(entries);
        } else if after <= u.offset {
            u.offset = after;
            u.entries = entries.to_vec();
        } else {
            u.entries.truncate((after - u.offset) as usize);
            u.entries.extend_from_slice(entries);
        }
        if self.committed >= after {
            // Only reachable through a planted bug or a broken leader: keep the
            // invariant committed <= last_index.
            self.committed = after - 1;
        }
    }

    pub(crate) fn commit_to(&mut self, index: LogIndex) {
        let index = index.min(self.last_index());
        if index > self.committed {
            self.committed = index;
        }
    }

    /// Installs a snapshot (not yet persisted) in place of the whole log. Its index
    /// was checked against `MAX_SNAPSHOT_INDEX` at the step boundary.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        let idx = snapshot.meta.index;
        debug_assert!(idx <= crate::bounds::MAX_SNAPSHOT_INDEX);
        self.committed = idx;
        self.unstable = Unstable {
            offset: idx.saturating_add(1),
            entries: Vec::new(),
            snapshot: Some(snapshot),
            handed: idx,
            snapshot_handed: false,
        };
    }

    /// The last index the driver has persisted (entries after it are unstable).
    pub(crate) fn persisted_index(&self) -> LogIndex {
        self.unstable.offset - 1
    }

    /// Unstable entries not handed to the driver yet.
    pub(crate) fn unhanded_entries(&self) -> &[Entry] {
        let u = &self.unstable;
        let skip = u.handed.saturating_add(1).saturating_sub(u.offset) as usize;
        u.entries.get(skip..).unwrap_or(&[])
    }

    /// The unstable snapshot, if not handed to the driver yet.
    pub(crate) fn unhanded_snapshot(&self) -> Option<&Snapshot> {
        if self.unstable.snapshot_handed {
            None
        } else {
            self.unstable.snapshot.as_ref()
        }
    }

    /// Everything unstable is now handed to the driver (it is in a Ready).
    pub(crate) fn hand_out(&mut self) {
        let u = &mut self.unstable;
        if let Some(e) = u.entries.last() {
            u.handed = u.handed.max(e.index);
        }
        if u.snapshot.is_some() {
            u.snapshot_handed = true;
        }
    }

    /// Committed, persisted entries not yet handed to the application, as long as
    /// fewer than `max_unapplied` handed entries wait to be applied.
    pub(crate) fn has_next_committed(&self, max_unapplied: u64) -> bool {
        self.unstable.snapshot.is_none()
            && self.committed.min(self.persisted_index()) > self.applying
            && self.applying.saturating_sub(self.applied) < max_unapplied
    }

    /// The next committed entries to apply; they count as handed out.
    pub(crate) fn next_committed_entries(&mut self, max_bytes: u64, max_unapplied: u64) -> Vec<Entry> {
        if !self.has_next_committed(max_unapplied) {
            return Vec::new();
        }
        let room = max_unapplied.saturating_sub(self.applying.saturating_sub(self.applied));
        let high =
            (self.committed.min(self.persisted_index()) + 1).min(self.applying.saturating_add(1).saturating_add(room));
        match self.store.entries(self.applying + 1, high, max_bytes) {
            Ok(es) => {
                if let Some(e) = es.last() {
                    self.applying = e.index;
                }
                es
            }
            Err(e) => {
                error!(%e, applying = self.applying, "storage failed to read committed entries");
                Vec::new()
            }
        }
    }

    /// The driver persisted the entries up to `index` (whose term was `term`).
    pub(crate) fn stable_to(&mut self, index: LogIndex, term: Term) {
        let u = &mut self.unstable;
        if index < u.offset {
            return;
        }
        let pos = (index - u.offset) as usize;
        if u.entries.get(pos).map(|e| e.term) == Some(term) {
            u.entries.drain(..=pos);
            u.offset = index + 1;
            u.handed = u.handed.max(index);
        }
    }

    /// The driver persisted the snapshot at `index`.
    pub(crate) fn stable_snapshot_to(&mut self, index: LogIndex) {
        if self.unstable.snapshot.as_ref().map(|s| s.meta.index) == Some(index) {
            self.unstable.snapshot = None;
            self.unstable.snapshot_handed = false;
            // The state machine now holds exactly the snapshot's state.
            self.applied = index;
            self.applying = index;
        }
    }

    pub(crate) fn applied_to(&mut self, index: LogIndex) {
        if index > self.applied && index <= self.committed {
            self.applied = index;
            self.applying = self.applying.max(index);
        }
    }
}
