//! An in-memory [`Storage`], for tests, simulations and users' own tests.

use crate::entry::{Entry, Snapshot, SnapshotMeta};
use crate::error::StorageError;
use crate::storage::{limit_size, InitialState, Storage};
use crate::types::{HardState, LogIndex, Membership, NodeId, Term};

/// An in-memory storage. The driver writes to it with [`MemStorage::append`],
/// [`MemStorage::set_hard_state`] and [`MemStorage::apply_snapshot`]; the core reads it
/// through [`Storage`]. Nothing survives the process, so it is only "durable" within a
/// simulation, where it stands for the disk of a node that crashes and restarts.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    hard_state: HardState,
    snapshot: Snapshot,
    /// Entries after the snapshot, `entries[0].index == snapshot.meta.index + 1`.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// An empty storage whose cluster starts with the given membership.
    pub fn new(membership: Membership) -> Self {
        MemStorage {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    membership,
                    ..SnapshotMeta::default()
                },
                ..Snapshot::default()
            },
            ..MemStorage::default()
        }
    }

    /// An empty storage whose cluster starts with the given voters.
    pub fn with_voters<I, N>(voters: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>,
    {
        MemStorage::new(Membership::with_voters(voters))
    }

    /// Stores the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// The stored hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Appends entries; entries from `entries[0].index` on that were stored before
    /// are replaced. Entries at or behind the snapshot are skipped.
    ///
    /// # Errors
    /// `StorageError::Unavailable` if the entries would leave a gap after the log.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let first_keep = self.snapshot.meta.index + 1;
        let entries = match entries.iter().position(|e| e.index >= first_keep) {
            Some(p) => &entries[p..],
            None => return Ok(()),
        };
        let start = entries[0].index;
        let last = self.last_index_inner();
        if start > last + 1 {
            return Err(StorageError::Unavailable(start));
        }
        self.entries.truncate((start - first_keep) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Replaces the whole log by a snapshot (a follower installs a leader's snapshot).
    /// Entries after the snapshot that agree with it are kept. A snapshot older than
    /// the current one is ignored.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        let idx = snapshot.meta.index;
        if idx < self.snapshot.meta.index {
            // Installing it would move the log's start backwards over entries that are
            // no longer stored, and drop every entry after it.
            return;
        }
        let keep = matches!(self.term(idx), Ok(t) if t == snapshot.meta.term);
        if keep {
            let drop = (idx + 1).saturating_sub(self.snapshot.meta.index + 1) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        if self.hard_state.commit < idx {
            self.hard_state.commit = idx;
        }
        self.snapshot = snapshot;
    }

    /// Makes a snapshot of the state at `index` (which must be in the log) and
    /// discards the entries up to it.
    ///
    /// # Errors
    /// `Compacted` if `index` is behind the current snapshot, `Unavailable` if it is
    /// beyond the log.
    pub fn compact(&mut self, index: LogIndex, membership: Membership, data: bytes::Bytes) -> Result<(), StorageError> {
        let term = self.term(index)?;
        if index <= self.snapshot.meta.index {
            return Err(StorageError::Compacted(index));
        }
        self.apply_snapshot(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                membership,
            },
            data,
        });
        Ok(())
    }

    fn last_index_inner(&self) -> LogIndex {
        self.snapshot.meta.index + self.entries.len() as u64
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        Ok(InitialState {
            hard_state: self.hard_state.clone(),
            membership: self.snapshot.meta.membership.clone(),
        })
    }

    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let first = self.snapshot.meta.index + 1;
        if low < first {
            return Err(StorageError::Compacted(low));
        }
        if high > self.last_index_inner() + 1 {
            return Err(StorageError::Unavailable(high));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let mut out = self.entries[(low - first) as usize..(high - first) as usize].to_vec();
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        let snap = &self.snapshot.meta;
        if index < snap.index {
            return Err(StorageError::Compacted(index));
        }
        if index == snap.index {
            return Ok(snap.term);
        }
        self.entries
            .get((index - snap.index - 1) as usize)
            .map(|e| e.term)
            .ok_or(StorageError::Unavailable(index))
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.snapshot.meta.index + 1)
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.last_index_inner())
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        Ok(self.snapshot.clone())
    }
}
