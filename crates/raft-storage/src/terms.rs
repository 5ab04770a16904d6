//! The term of every entry in the log, in memory, as runs: Raft logs change term
//! rarely, so a few runs describe millions of entries and `term(i)` never reads disk.

use raft_core::{LogIndex, Term};

/// `(first index, term)` runs covering the entries `first..next` of the physical log.
#[derive(Debug, Default)]
pub(crate) struct TermRuns {
    runs: Vec<(LogIndex, Term)>,
    next: LogIndex,
}

impl TermRuns {
    /// An empty log whose next entry gets index `next`.
    pub(crate) fn new(next: LogIndex) -> Self {
        TermRuns { runs: Vec::new(), next }
    }

    /// Records entry `index` of `term`; `index` must be the next one, and at most
    /// [`raft_core::MAX_INDEX`] (recovery and `append` check it), so `index + 1`
    /// cannot overflow.
    pub(crate) fn push(&mut self, index: LogIndex, term: Term) {
        debug_assert_eq!(index, self.next);
        debug_assert!(index <= raft_core::MAX_INDEX);
        if self.runs.last().is_none_or(|&(_, t)| t != term) {
            self.runs.push((index, term));
        }
        self.next = index + 1;
    }

    /// The term of the last entry, if there is one.
    pub(crate) fn last_term(&self) -> Option<Term> {
        self.runs.last().map(|&(_, t)| t)
    }

    /// The term of entry `index`, if the runs cover it.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index >= self.next {
            return None;
        }
        let pos = self.runs.partition_point(|&(start, _)| start <= index);
        pos.checked_sub(1).map(|p| self.runs[p].1)
    }

    /// Forgets entries from `index` on; the next entry gets index `index`.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        let keep = self.runs.partition_point(|&(start, _)| start < index);
        self.runs.truncate(keep);
        self.next = index;
    }

    /// Forgets entries before `index` (they left the log); `index <= next`.
    pub(crate) fn drop_before(&mut self, index: LogIndex) {
        debug_assert!(index <= self.next);
        if index >= self.next {
            self.runs.clear();
            return;
        }
        let pos = self.runs.partition_point(|&(start, _)| start <= index);
        if pos > 1 {
            self.runs.drain(..pos - 1);
        }
        if let Some(first) = self.runs.first_mut() {
            first.0 = first.0.max(index);
        }
    }

    /// Forgets everything; the next entry gets index `next`.
    pub(crate) fn reset(&mut self, next: LogIndex) {
        self.runs.clear();
        self.next = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive version: one term per entry.
    fn naive(entries: &[(LogIndex, Term)], index: LogIndex) -> Option<Term> {
        entries.iter().find(|e| e.0 == index).map(|e| e.1)
    }

    #[test]
    fn runs_agree_with_one_term_per_entry() {
        let mut runs = TermRuns::new(5);
        let mut all = Vec::new();
        for (i, t) in [(5, 1), (6, 1), (7, 2), (8, 2), (9, 2), (10, 5)] {
            runs.push(i, t);
            all.push((i, t));
        }
        for i in 0..12 {
            assert_eq!(runs.term(i), naive(&all, i), "index {i}");
        }
        runs.truncate_from(8);
        all.truncate(3);
        runs.push(8, 3);
        all.push((8, 3));
        runs.drop_before(7);
        all.retain(|e| e.0 >= 7);
        for i in 0..12 {
            assert_eq!(runs.term(i), naive(&all, i), "index {i}");
        }
        runs.drop_before(9);
        assert_eq!(runs.term(8), None);
        runs.push(9, 9);
        assert_eq!(runs.term(9), Some(9));
        runs.truncate_from(3);
        assert_eq!(runs.term(9), None);
        runs.push(3, 9);
        assert_eq!(runs.term(3), Some(9));
    }
}
