//! The write side of a Raft storage, next to raft-core's read-only [`Storage`].

use std::io::Read;

use bytes::Bytes;
use raft_core::{Entry, HardState, MemStorage, Snapshot, SnapshotInfo, SnapshotMeta, Storage, StorageError};

use crate::snapshot_sink::{SnapshotSink, StagedSnapshot};

/// A [`Storage`] the driver can write a [`raft_core::Ready`] into.
///
/// # Obligations of an implementation
/// Each method returns only once what it wrote is durable (it survives a crash or a
/// power loss): the driver sends the messages that promise this state right after.
/// The one exception is [`write_unsynced`](LogStore::write_unsynced), durable once the
/// storage's [`sync_domain`](LogStore::sync_domain) syncs (at once without a domain).
/// The [`crate::contract`] suite checks all of this; run it on your implementation.
///
/// - [`append`](LogStore::append): entries at or before the snapshot's index are
///   skipped; the rest, which must start at or before `last_index() + 1`, replace
///   every stored entry from their first index on. One call is one durable write
///   (group commit): the driver hands over a whole Ready's entries at once.
/// - [`set_hard_state`](LogStore::set_hard_state): the term, vote and commit are
///   replaced as one.
/// - [`save_snapshot`](LogStore::save_snapshot): a snapshot older than the current one
///   is ignored. Otherwise it becomes the current snapshot and the entries up to its
///   index leave the log; the entries after it stay if the log holds the snapshot's
///   last entry with the snapshot's term, and all entries go otherwise (a follower
///   installing a leader's snapshot over a conflicting log). The commit index rises to
///   the snapshot's index if it was lower. Used both to install a leader's snapshot
///   and to compact one's own log.
/// - After a crash, the storage reads back exactly what the completed calls wrote. A
///   call interrupted by the crash leaves either its old state or its new one, except
///   that an interrupted `append` starting at index `i` may leave the old log cut
///   anywhere from `i` on, followed by any prefix of the new entries (the old entries
///   from `i` on were being replaced anyway).
pub trait LogStore: Storage {
    /// Appends entries durably, replacing stored entries from the first one's index on.
    ///
    /// # Errors
    /// `StorageError::Unavailable(i)` if the entries start at `i > last_index() + 1`
    /// (they would leave a gap); anything the implementation reports.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;

    /// Stores the hard state durably.
    ///
    /// # Errors
    /// Whatever the implementation reports.
    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError>;

    /// Stores a snapshot durably and drops the log entries it covers.
    ///
    /// # Errors
    /// Whatever the implementation reports.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError>;

    /// Writes entries (by the rules of [`append`](LogStore::append)) and then a hard
    /// state, without waiting for durability: the write is durable once `sync` returns
    /// `Ok` on this storage's [`sync_domain`](LogStore::sync_domain). Reads see it at
    /// once. With no sync domain (the default) it is `append` then `set_hard_state`,
    /// each durable on return.
    ///
    /// # Errors
    /// As [`append`](LogStore::append) and [`set_hard_state`](LogStore::set_hard_state).
    fn write_unsynced(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StorageError> {
        if !entries.is_empty() {
            self.append(entries)?;
        }
        if let Some(hs) = hard_state {
            self.set_hard_state(hs)?;
        }
        Ok(())
    }

    /// The durable log this storage shares with others, if any: storages that return
    /// domains of the same [`SyncDomain::id`] share one log, so after
    /// [`write_unsynced`](LogStore::write_unsynced) on several of them one
    /// [`SyncDomain::sync`] makes all of it durable (group commit across Raft groups).
    /// `None` by default: each write is durable on its own.
    fn sync_domain(&self) -> Option<std::sync::Arc<dyn SyncDomain>> {
        None
    }

    /// Whether writes are so cheap (memory only, no IO) that a driver may do them
    /// on its own task instead of handing them to a log writer thread. `false` by
    /// default; [`MemStorage`] says `true`.
    fn writes_inline(&self) -> bool {
        false
    }

    /// A sink for a new snapshot's data, made by a state machine or received from a
    /// leader, which [`LogStore::install_snapshot`] then makes the current snapshot.
    /// It is independent of the storage (another thread may write it). By default
    /// the data is kept in memory; [`crate::FileStorage`] stages it in a file of its
    /// data directory, so that no snapshot is ever held whole in memory.
    ///
    /// # Errors
    /// Whatever the implementation reports.
    fn snapshot_sink(&self) -> Result<SnapshotSink, StorageError> {
        Ok(SnapshotSink::memory())
    }

    /// Makes staged data the snapshot `meta`, durably, by the rules of
    /// [`LogStore::save_snapshot`].
    ///
    /// # Errors
    /// Whatever the implementation reports.
    fn install_snapshot(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), StorageError> {
        let data = staged.into_bytes()?;
        self.save_snapshot(&Snapshot {
            meta: meta.clone(),
            data,
        })
    }

    /// The current snapshot's data as a stream, from the start (for a state machine
    /// to restore from after a restart). A reader over a file fails at its end if the
    /// data does not match its checksum.
    ///
    /// # Errors
    /// Whatever the implementation reports.
    fn snapshot_reader(&self) -> Result<Box<dyn Read + Send>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(self.snapshot()?.data)))
    }

    /// The current snapshot's chunks, readable without the storage: a leader sends
    /// them while the log writer holds the storage for an fsync. `None` (the default)
    /// when the storage has no such reader; then chunks are read through
    /// [`Storage::snapshot_chunk`](raft_core::Storage::snapshot_chunk).
    ///
    /// # Errors
    /// Whatever the implementation reports.
    fn snapshot_chunks(&self) -> Result<Option<std::sync::Arc<dyn ChunkSource>>, StorageError> {
        Ok(None)
    }
}

/// A durable log shared by several storages (see [`LogStore::sync_domain`]).
pub trait SyncDomain: Send + Sync {
    /// Identifies the shared log: two domains with the same id are the same log.
    fn id(&self) -> u64;

    /// Makes everything written so far to the shared log, by any of its storages,
    /// durable (one `fdatasync` for all of them).
    ///
    /// # Errors
    /// The sync failed; then nothing written since the last successful sync can be
    /// trusted, and the storages refuse further writes.
    fn sync(&self) -> Result<(), StorageError>;
}

/// One snapshot's data, read by offset, independent of the storage it came from (it
/// keeps its file open: a newer snapshot replacing it does not change what it reads).
pub trait ChunkSource: Send + Sync + std::fmt::Debug {
    /// What the snapshot covers, its length and CRC.
    fn info(&self) -> &SnapshotInfo;

    /// Up to `max_len` bytes of its data from `offset` (empty past the end).
    ///
    /// # Errors
    /// The read failed.
    fn read(&self, offset: u64, max_len: u64) -> Result<Bytes, StorageError>;
}

/// A boxed storage writes as the storage in it, so a program can pick memory or disk
/// at run time (`Box<dyn LogStore + Send>`) without a wrapper of its own.
impl<S: LogStore + ?Sized> LogStore for Box<S> {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        (**self).append(entries)
    }
    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        (**self).set_hard_state(hard_state)
    }
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        (**self).save_snapshot(snapshot)
    }
    fn writes_inline(&self) -> bool {
        (**self).writes_inline()
    }
    fn write_unsynced(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StorageError> {
        (**self).write_unsynced(entries, hard_state)
    }
    fn sync_domain(&self) -> Option<std::sync::Arc<dyn SyncDomain>> {
        (**self).sync_domain()
    }
    fn snapshot_sink(&self) -> Result<SnapshotSink, StorageError> {
        (**self).snapshot_sink()
    }
    fn install_snapshot(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), StorageError> {
        (**self).install_snapshot(meta, staged)
    }
    fn snapshot_reader(&self) -> Result<Box<dyn Read + Send>, StorageError> {
        (**self).snapshot_reader()
    }
    fn snapshot_chunks(&self) -> Result<Option<std::sync::Arc<dyn ChunkSource>>, StorageError> {
        (**self).snapshot_chunks()
    }
}

/// [`MemStorage`] lives in raft-core, which knows no write trait: these are its
/// write methods under the trait's names (it writes memory only, so inline).
impl LogStore for MemStorage {
    fn writes_inline(&self) -> bool {
        true
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        MemStorage::append(self, entries)
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        MemStorage::set_hard_state(self, hard_state.clone());
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        MemStorage::apply_snapshot(self, snapshot.clone());
        Ok(())
    }
}
