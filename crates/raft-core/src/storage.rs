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

use crate::entry::{Entry, Snapshot, SnapshotMeta};
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

    /// The latest snapshot, whole. The core itself reads snapshots through
    /// [`Storage::snapshot_info`] and [`Storage::snapshot_chunk`]; a storage whose
    /// snapshots are large overrides those two so that no snapshot is ever read whole.
    fn snapshot(&self) -> Result<Snapshot, StorageError>;

    /// The latest snapshot's metadata, the length of its data and the CRC-32 (IEEE)
    /// of its data, to send it to a follower that lags behind the log.
    fn snapshot_info(&self) -> Result<SnapshotInfo, StorageError> {
        let s = self.snapshot()?;
        Ok(SnapshotInfo {
            len: s.data.len() as u64,
            crc: crc32fast::hash(&s.data),
            meta: s.meta,
        })
    }

    /// Up to `max_len` bytes of the data of the snapshot at `index`, from `offset`
    /// (fewer at its end, none past it). `StorageError::Unavailable(index)` if the
    /// latest snapshot is no longer the one at `index`.
    fn snapshot_chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<bytes::Bytes, StorageError> {
        let s = self.snapshot()?;
        if s.meta.index != index {
            return Err(StorageError::Unavailable(index));
        }
        let len = s.data.len() as u64;
        let start = offset.min(len);
        let end = start.saturating_add(max_len).min(len);
        Ok(s.data.slice(start as usize..end as usize))
    }
}

/// A boxed storage reads as the storage in it, so a driver can pick its storage at
/// run time (`Box<dyn Storage>`) without a wrapper of its own.
impl<S: Storage + ?Sized> Storage for Box<S> {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        (**self).initial_state()
    }
    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        (**self).entries(low, high, max_bytes)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        (**self).term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        (**self).first_index()
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        (**self).last_index()
    }
    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        (**self).snapshot()
    }
    fn snapshot_info(&self) -> Result<SnapshotInfo, StorageError> {
        (**self).snapshot_info()
    }
    fn snapshot_chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<bytes::Bytes, StorageError> {
        (**self).snapshot_chunk(index, offset, max_len)
    }
}

/// What [`Storage::snapshot_info`] tells about the latest snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The length of its data in bytes.
    pub len: u64,
    /// The CRC-32 (IEEE) of its data.
    pub crc: u32,
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
