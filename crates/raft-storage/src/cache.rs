//! A bounded cache of the most recent entries. It always holds a suffix of the log
//! (possibly empty), so a read at or after its first index never touches the disk.

use std::collections::VecDeque;

use raft_core::{Entry, LogIndex};

#[derive(Debug)]
pub(crate) struct EntryCache {
    entries: VecDeque<Entry>,
    bytes: u64,
    capacity: u64,
}

impl EntryCache {
    /// A cache of at most `capacity` bytes of [`Entry::size`].
    pub(crate) fn new(capacity: u64) -> Self {
        EntryCache {
            entries: VecDeque::new(),
            bytes: 0,
            capacity,
        }
    }

    /// The first cached index, if any.
    pub(crate) fn first_index(&self) -> Option<LogIndex> {
        self.entries.front().map(|e| e.index)
    }

    /// How many entries, and how many bytes of them, are cached.
    pub(crate) fn usage(&self) -> (usize, u64) {
        (self.entries.len(), self.bytes)
    }

    /// The cached entry at `index`.
    pub(crate) fn get(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.first_index()?;
        self.entries.get(usize::try_from(index.checked_sub(first)?).ok()?)
    }

    /// Adds entries that were just appended to the log (right after the cached ones),
    /// evicting the oldest ones beyond the budget.
    pub(crate) fn extend(&mut self, new: &[Entry]) {
        if let (Some(last), Some(first)) = (self.entries.back(), new.first()) {
            if last.index + 1 != first.index {
                self.clear();
            }
        }
        for e in new {
            self.bytes += e.size();
            self.entries.push_back(e.clone());
        }
        while self.bytes > self.capacity {
            match self.entries.pop_front() {
                Some(e) => self.bytes -= e.size(),
                None => break,
            }
        }
    }

    /// Drops the entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        while self.entries.back().is_some_and(|e| e.index >= index) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= e.size();
            }
        }
    }

    /// Drops the entries up to and including `index`.
    pub(crate) fn drop_through(&mut self, index: LogIndex) {
        while self.entries.front().is_some_and(|e| e.index <= index) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.size();
            }
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use raft_core::EntryPayload;

    use super::*;

    fn entry(index: LogIndex) -> Entry {
        Entry {
            term: 1,
            index,
            payload: EntryPayload::Command(Bytes::from(vec![0u8; 76])),
        }
    }

    #[test]
    fn keeps_a_bounded_suffix() {
        let mut c = EntryCache::new(250); // 100 bytes per entry: two fit
        c.extend(&[entry(1), entry(2), entry(3)]);
        assert_eq!(c.first_index(), Some(2));
        assert!(c.get(1).is_none() && c.get(3).is_some() && c.get(4).is_none());
        c.truncate_from(3);
        assert_eq!(c.get(3), None);
        c.extend(&[entry(3)]);
        c.drop_through(2);
        assert_eq!(c.first_index(), Some(3));
        c.extend(&[entry(9)]); // not contiguous: start over
        assert_eq!(c.first_index(), Some(9));
    }
}
