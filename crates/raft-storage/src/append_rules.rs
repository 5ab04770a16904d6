//! What an `append` must refuse before anything is written, shared by
//! [`crate::FileStorage`] and [`crate::GroupLog`]: whatever recovery would refuse, so
//! that no append can leave a log that does not open again.

use raft_core::{Entry, LogIndex, StorageError, Term, MAX_INDEX};

use crate::error::Error;

/// The entries of an append that are after the snapshot at `snap_index`, checked
/// against a log whose last index is `last_index` and whose terms `term` reads
/// (`term(i)` for `snap_index <= i <= last_index`). Empty if all are behind the snapshot.
pub(crate) fn entries_to_append(
    entries: &[Entry],
    snap_index: LogIndex,
    last_index: LogIndex,
    term: impl Fn(LogIndex) -> Option<Term>,
) -> Result<&[Entry], StorageError> {
    let Some(skip) = entries.iter().position(|e| e.index > snap_index) else {
        return Ok(&[]);
    };
    let entries = &entries[skip..];
    if let Some(e) = entries.iter().find(|e| e.index > MAX_INDEX) {
        return Err(Error::IndexBeyondLimit {
            index: e.index,
            limit: MAX_INDEX,
        }
        .into());
    }
    for w in entries.windows(2) {
        // Both indexes are at most MAX_INDEX: `+ 1` cannot overflow.
        if w[1].index != w[0].index + 1 {
            return Err(Error::NotConsecutive {
                expected: w[0].index + 1,
                found: w[1].index,
            }
            .into());
        }
    }
    let start = entries[0].index;
    if start > last_index + 1 {
        return Err(StorageError::Unavailable(start));
    }
    // start > snapshot index >= 0. Raft's terms never go down along a log: the entry
    // before `start` stays, and a leader's entries after it have its term or later.
    let mut previous = term(start - 1).unwrap_or(0);
    for e in entries {
        if e.term < previous || e.term == 0 {
            return Err(Error::TermGoesDown {
                index: e.index,
                term: e.term,
                previous: previous.max(1),
            }
            .into());
        }
        previous = e.term;
    }
    Ok(entries)
}
