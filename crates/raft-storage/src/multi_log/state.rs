//! One group's state in memory: its meta (hard state, snapshot) and where each of its
//! live entries' records is. About 200 bytes per group plus 32 bytes per live entry:
//! entries themselves stay on disk (in the page cache while recent).

use std::collections::{BTreeSet, VecDeque};

use raft_core::{LogIndex, Term};

use super::record::GroupMeta;

/// Where an entry's record is, and the entry's term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    /// The segment's sequence number.
    pub(crate) seq: u64,
    /// Where the record starts in it.
    pub(crate) offset: u64,
    /// The record's length, header included.
    pub(crate) len: u32,
    /// The entry's term.
    pub(crate) term: Term,
}

/// A group's state.
#[derive(Debug)]
pub(crate) struct GroupState {
    /// Hard state and snapshot (`meta.last_index` is only kept up to date in records).
    pub(crate) meta: GroupMeta,
    /// The index of `log[0]`. Outside of recovery, `snapshot.index + 1`.
    pub(crate) first: LogIndex,
    /// The live entries' records, in index order (so their segments never go down).
    pub(crate) log: VecDeque<Loc>,
    /// The group was removed: its handles refuse writes.
    pub(crate) removed: bool,
}

impl GroupState {
    /// A group with `meta` and no entries.
    pub(crate) fn new(meta: GroupMeta) -> Self {
        GroupState {
            first: meta.snapshot.index + 1,
            meta,
            log: VecDeque::new(),
            removed: false,
        }
    }

    /// The last index (the snapshot's if there is no entry after it).
    pub(crate) fn last_index(&self) -> LogIndex {
        if self.log.is_empty() {
            self.meta.snapshot.index
        } else {
            // first >= 1 and the log holds entries up to at most MAX_INDEX.
            (self.first + self.log.len() as u64 - 1).max(self.meta.snapshot.index)
        }
    }

    /// The meta with the current last index, for a record.
    pub(crate) fn meta_now(&self) -> GroupMeta {
        GroupMeta {
            last_index: self.last_index(),
            ..self.meta.clone()
        }
    }

    /// The record of entry `index`, if it is in the log.
    pub(crate) fn loc(&self, index: LogIndex) -> Option<&Loc> {
        let i = usize::try_from(index.checked_sub(self.first)?).ok()?;
        self.log.get(i)
    }

    /// The term of entry `index`, if it is in the log or is the snapshot's last.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.meta.snapshot.index {
            return Some(self.meta.snapshot.term);
        }
        self.loc(index).map(|l| l.term)
    }

    /// Entry `index` (at most one past the last) was written at `loc`: it replaces the
    /// entries from `index` on.
    pub(crate) fn put(&mut self, index: LogIndex, loc: Loc) {
        debug_assert!(index >= self.first && index <= self.first + self.log.len() as u64);
        self.log.truncate(index.saturating_sub(self.first) as usize);
        self.log.push_back(loc);
    }

    /// Keeps only the entries in `after + 1 ..= last`.
    pub(crate) fn bound(&mut self, after: LogIndex, last: LogIndex) {
        if let Some(keep) = last.checked_add(1).and_then(|end| end.checked_sub(self.first)) {
            if keep < self.log.len() as u64 {
                self.log.truncate(keep as usize);
            }
        } else {
            self.log.clear();
        }
        let drop = after
            .saturating_add(1)
            .saturating_sub(self.first)
            .min(self.log.len() as u64);
        self.log.drain(..drop as usize);
        self.first += drop;
        if self.log.is_empty() {
            self.first = after.saturating_add(1);
        }
    }

    /// Adds the segments this group's live entries are in to `out`.
    pub(crate) fn segments_in_use(&self, out: &mut BTreeSet<u64>) {
        let mut i = 0;
        while let Some(loc) = self.log.get(i) {
            out.insert(loc.seq);
            // Segments never go down along the log: jump past this one's entries.
            let seq = loc.seq;
            i = self.log.partition_point(|l| l.seq <= seq).max(i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(seq: u64) -> Loc {
        Loc {
            seq,
            offset: 0,
            len: 13,
            term: 1,
        }
    }

    /// What an idle group costs in memory, besides its membership's names and the
    /// registry's entry: the brief allows a few KiB.
    #[test]
    fn an_idle_group_is_small() {
        assert_eq!(std::mem::size_of::<Loc>(), 32);
        assert!(
            std::mem::size_of::<GroupState>() <= 256,
            "{}",
            std::mem::size_of::<GroupState>()
        );
    }

    #[test]
    fn put_and_bound_keep_a_contiguous_log() {
        let mut g = GroupState::new(GroupMeta::default());
        for i in 1..=5 {
            g.put(i, loc(1));
        }
        g.put(3, loc(2)); // replaces 3..=5
        assert_eq!((g.first, g.last_index()), (1, 3));
        g.bound(1, 2);
        assert_eq!((g.first, g.log.len()), (2, 1));
        g.bound(10, 20);
        assert_eq!((g.first, g.log.len()), (11, 0));
        let mut g = GroupState::new(GroupMeta::default());
        for (i, s) in [(1, 1), (2, 1), (3, 2), (4, 4)] {
            g.put(i, loc(s));
        }
        let mut used = BTreeSet::new();
        g.segments_in_use(&mut used);
        assert_eq!(used.into_iter().collect::<Vec<_>>(), vec![1, 2, 4]);
    }
}
