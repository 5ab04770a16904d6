//! [`FileStorage`]: the durable [`LogStore`] in one data directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use raft_core::{
    Entry, HardState, InitialState, LogIndex, Snapshot, SnapshotInfo, SnapshotMeta, Storage, StorageError, Term,
};
use tracing::{debug, info};

use crate::append_rules::entries_to_append;
use crate::cache::EntryCache;
use crate::error::Error;
use crate::log_store::LogStore;
use crate::names::snapshot_name;
use crate::options::Options;
use crate::recovery::{recover, refuse_foreign};
use crate::segment::Gather;
use crate::snapshot_file::Current;
use crate::snapshot_sink::{SnapshotSink, StagedSnapshot};
use crate::state::{is_impossible_snapshot, write_state, StateRecord};
use crate::vfs::{DirLock, LockOutcome, StdVfs, Vfs};
use crate::wal::Wal;

/// A Raft log, hard state and snapshot on disk, in one data directory that it locks.
///
/// Writes go through [`LogStore`] and are durable when they return; reads go through
/// [`Storage`]. Recent entries are served from a bounded cache, older ones from disk.
/// See the crate docs for an example and `docs/storage.md` for the format.
pub struct FileStorage {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    options: Options,
    state: StateRecord,
    wal: Wal,
    cache: EntryCache,
    poisoned: bool,
    _lock: DirLock,
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .field("snapshot", &(self.state.snapshot.index, self.state.snapshot.term))
            .field("last_index", &self.last_index_inner())
            .field("hard_state", &self.state.hard_state)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

/// A summary of what a [`FileStorage`] holds (see [`FileStorage::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The first index in the log.
    pub first_index: LogIndex,
    /// The last index in the log (the snapshot's if the log is empty).
    pub last_index: LogIndex,
    /// The index the current snapshot covers up to.
    pub snapshot_index: LogIndex,
    /// How many segment files the log spans.
    pub segments: usize,
    /// How many recent entries are held in memory.
    pub cached_entries: usize,
    /// Their size by [`Entry::size`].
    pub cached_bytes: u64,
}

impl FileStorage {
    /// Opens (creating it if needed) the data directory `dir` and recovers its content.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process (or another `FileStorage` in this one)
    /// has it open; [`Error::ForeignFile`], [`Error::NewerFormat`], [`Error::Corrupt`],
    /// [`Error::MissingSegment`], [`Error::HardStateBeyondLog`] ... if its content is
    /// not a log this build can trust. A torn write at the tail of the log is not an
    /// error: it is cut off with a warning.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        Self::open_with_vfs(Arc::new(StdVfs), dir, options)
    }

    /// [`FileStorage::open`] through another file system (for fault injection).
    ///
    /// # Errors
    /// As [`FileStorage::open`].
    pub fn open_with_vfs(vfs: Arc<dyn Vfs>, dir: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        options.validate()?;
        let dir = dir.as_ref().to_owned();
        refuse_foreign(&*vfs, &dir)?;
        vfs.create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let lock = match vfs.lock_dir(&dir).map_err(Error::io("lock", &dir))? {
            LockOutcome::Acquired(lock) => lock,
            LockOutcome::Held { holder } => return Err(Error::Locked { dir, holder }),
        };
        let recovered = recover(&vfs, &dir, &options)?;
        Ok(FileStorage {
            cache: EntryCache::new(options.get_cache_bytes()),
            dir,
            vfs,
            options,
            state: recovered.state,
            wal: recovered.wal,
            poisoned: false,
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.state.hard_state
    }

    /// Whether an earlier write failed, so that writes are refused until reopened.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// What the storage holds now, for operators and tests.
    pub fn stats(&self) -> Stats {
        let (cached_entries, cached_bytes) = self.cache.usage();
        Stats {
            first_index: self.state.snapshot.index + 1,
            last_index: self.last_index_inner(),
            snapshot_index: self.state.snapshot.index,
            segments: self.wal.segment_count(),
            cached_entries,
            cached_bytes,
        }
    }

    fn last_index_inner(&self) -> LogIndex {
        self.wal.next_index().max(self.state.snapshot.index + 1) - 1
    }

    fn check_writable(&self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned { dir: self.dir.clone() });
        }
        Ok(())
    }

    /// A failed write leaves the disk in an unknown state (after a failed fsync even
    /// the page cache cannot be trusted), so further writes are refused.
    fn poison(&mut self, e: &Error) {
        tracing::error!(dir = %self.dir.display(), error = %e, "raft storage write failed; refusing further writes");
        self.poisoned = true;
    }

    fn poison_on_err<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            self.poison(e);
        }
        r
    }

    fn write_state(&mut self, state: StateRecord) -> Result<(), Error> {
        let r = write_state(&*self.vfs, &self.dir, &state, self.options.sync());
        self.poison_on_err(r)?;
        self.state = state;
        Ok(())
    }

    fn append_inner(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.check_writable()?;
        let last = self.last_index_inner();
        let entries = entries_to_append(entries, self.state.snapshot.index, last, |i| self.term(i).ok())?;
        let Some(start) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        self.cache.truncate_from(start);
        if let Err(e) = self.wal.append(entries) {
            // Too large an entry is refused before anything is written.
            if !matches!(e, Error::EntryTooLarge { .. }) {
                self.poison(&e);
            }
            return Err(e.into());
        }
        self.cache.extend(entries);
        Ok(())
    }

    /// The current snapshot and its file.
    fn current(&self) -> Current<'_> {
        let meta = &self.state.snapshot;
        Current {
            vfs: &*self.vfs,
            meta,
            path: self
                .state
                .snapshot_file
                .then(|| self.dir.join(snapshot_name(meta.index, meta.term))),
        }
    }

    fn install_inner(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), Error> {
        self.check_writable()?;
        let (index, term) = (meta.index, meta.term);
        // What recovery would refuse.
        if is_impossible_snapshot(index, term) {
            return Err(Error::ImpossibleSnapshot { index, term });
        }
        let old = &self.state.snapshot;
        if index < old.index {
            debug!(
                index,
                current = old.index,
                "ignoring a snapshot older than the current one"
            );
            return Ok(());
        }
        let old_file = self.state.snapshot_file.then(|| snapshot_name(old.index, old.term));
        let keep = self.term(index).ok() == Some(term);
        let r = staged.write_file(&self.vfs, &self.dir, meta, self.options.sync());
        let name = self.poison_on_err(r)?;
        let mut state = StateRecord {
            snapshot: meta.clone(),
            snapshot_file: true,
            ..self.state.clone()
        };
        state.hard_state.commit = state.hard_state.commit.max(index);
        // The commit point: from here on a restart sees the new snapshot, and recovery
        // finishes whatever of the cleanup below a crash interrupts.
        self.write_state(state)?;
        let r = if keep {
            self.cache.drop_through(index);
            self.wal.remove_through(index).map(|_| ())
        } else {
            info!(index, term, "snapshot replaces the whole log");
            self.cache.clear();
            self.wal.clear(index + 1)
        };
        self.poison_on_err(r)?;
        if let Some(old) = old_file.filter(|old| *old != name) {
            let path = self.dir.join(old);
            let r = self.vfs.remove_file(&path).map_err(Error::io("remove", &path));
            self.poison_on_err(r)?;
        }
        Ok(())
    }
}

impl Storage for FileStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        Ok(InitialState {
            hard_state: self.state.hard_state.clone(),
            membership: self.state.snapshot.membership.clone(),
        })
    }

    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        if low <= self.state.snapshot.index {
            return Err(StorageError::Compacted(low));
        }
        if high > self.last_index_inner() + 1 {
            return Err(StorageError::Unavailable(high));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let mut gather = Gather::new(max_bytes);
        let cached_from = self.cache.first_index().unwrap_or(high).clamp(low, high);
        self.wal.read(low, cached_from, &mut gather)?;
        let mut index = cached_from;
        while index < high && !gather.full {
            match self.cache.get(index) {
                Some(e) => {
                    gather.push(e.clone());
                }
                None => break,
            }
            index += 1;
        }
        Ok(gather.out)
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        let snap = &self.state.snapshot;
        if index < snap.index {
            return Err(StorageError::Compacted(index));
        }
        if index == snap.index {
            return Ok(snap.term);
        }
        if let Some(e) = self.cache.get(index) {
            return Ok(e.term);
        }
        self.wal.term(index).ok_or(StorageError::Unavailable(index))
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.state.snapshot.index + 1)
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.last_index_inner())
    }

    fn snapshot_info(&self) -> Result<SnapshotInfo, StorageError> {
        self.current().info()
    }

    fn snapshot_chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        self.current().chunk(index, offset, max_len)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.current().snapshot()
    }
}

impl LogStore for FileStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.append_inner(entries)
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.check_writable()?;
        if *hard_state == self.state.hard_state {
            return Ok(());
        }
        let state = StateRecord {
            hard_state: hard_state.clone(),
            ..self.state.clone()
        };
        Ok(self.write_state(state)?)
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        Ok(self.install_inner(&snapshot.meta, StagedSnapshot::from_bytes(snapshot.data.clone()))?)
    }

    fn snapshot_sink(&self) -> Result<SnapshotSink, StorageError> {
        Ok(SnapshotSink::file(self.vfs.clone(), &self.dir, self.options.sync())?)
    }

    fn install_snapshot(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), StorageError> {
        Ok(self.install_inner(meta, staged)?)
    }

    fn snapshot_chunks(&self) -> Result<Option<std::sync::Arc<dyn crate::ChunkSource>>, StorageError> {
        self.current().chunks()
    }

    fn snapshot_reader(&self) -> Result<Box<dyn std::io::Read + Send>, StorageError> {
        self.current().reader()
    }
}
