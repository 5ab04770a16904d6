//! The storage the core reads its stable log from, and its obligations.
//!
//! The core never writes to storage itself: everything to persist comes out in a
//! [`crate::Ready`], the driver writes it (through the storage's own write methods),
//! and then calls [`crate::RawNode::advance`]. The trait is therefore read-only.
//!
//! # Obligations of an implementation
//! - After the driver persisted a `Ready`'s hard state and entries and called
//!   `advance`, the reads below must return them, also after a crash and restart:
//!   an entry or vote the driver acknowledged as persisted is never lost.
//! - The log is contiguous: `first_index()..=last_index()` are all readable, and
//!   `term(first_index() - 1)` is the snapshot's term (so the log-matching check works
//!   at the snapshot boundary).
//! - Appending entries that start at index `i` replaces everything from `i` on (a
//!   leader overwrote a conflicting suffix).
//! - `initial_state()` returns the last persisted hard state and the membership of
//!   the latest snapshot.

use crate::entry::{Entry, Snapshot};
use crate::error::StorageError;
use crate::types::{HardState, LogIndex, Membership, Term};

/// What a node restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialState {
    /// The persisted term, vote and commit.
    pub hard_state: HardState,
    /// The membership of the latest snapshot (or the bootstrap configuration).
    /// Configuration entries after the snapshot are found by the core in the log.
    pub membership: Membership,
}

/// Read access to a node's stable log, hard state and snapshot.
pub trait Storage {
    /// The persisted hard state and membership.
    fn initial_state(&self) -> Result<InitialState, StorageError>;

    /// The entries in `[low, high)`, stopping early (but after at least one entry)
    /// once their total [`Entry::size`] would exceed `max_bytes`.
    /// `StorageError::Compacted` if `low` is behind the snapshot,
    /// `StorageError::Unavailable` if `high > last_index() + 1`.
    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError>;

    /// The term of the entry at `index`; for `first_index() - 1`, the snapshot's term.
    fn term(&self, index: LogIndex) -> Result<Term, StorageError>;

    /// The index of the first entry still in the log (the snapshot's index + 1).
    fn first_index(&self) -> Result<LogIndex, StorageError>;

    /// The index of the last entry (the snapshot's index if the log is empty).
    fn last_index(&self) -> Result<LogIndex, StorageError>;

    /// The latest snapshot, to send to a follower that lags behind the log.
    fn snapshot(&self) -> Result<Snapshot, StorageError>;
}

/// Keeps at most `max_bytes` of entries, but always at least one.
pub(crate) fn limit_size(entries: &mut Vec<Entry>, max_bytes: u64) {
    let mut total = 0u64;
    let mut keep = 0usize;
    for e in entries.iter() {
        total += e.size();
        if keep > 0 && total > max_bytes {
            break;
        }
        keep += 1;
    }
    entries.truncate(keep);
}
