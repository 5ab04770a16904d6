//! [`MultiLog`]: one log shared by many Raft groups, so that one `fdatasync` commits
//! the writes of every group (group commit across groups), with a [`GroupLog`] per
//! group that is a [`crate::LogStore`] like [`crate::FileStorage`]. The format, the
//! recovery and the compaction rules are in `docs/storage.md`.

mod group;
mod record;
mod recover;
mod state;
mod wal;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use raft_core::StorageError;

pub use group::GroupLog;

use self::record::{group_snapshot_name, GroupMeta, RecordRef};
use self::state::GroupState;
use self::wal::{encode, lock, SegFile, WalState};
use crate::error::Error;
use crate::log_store::SyncDomain;
use crate::options::Options;
use crate::vfs::{DirLock, LockOutcome, StdVfs, Vfs};

/// Many Raft groups' logs, hard states and snapshots in one directory (which it locks):
/// one segmented write-ahead log whose records name their group, and a snapshot file per
/// group. Get a group's storage with [`MultiLog::group`].
///
/// ```
/// use raft_core::{Entry, EntryPayload, HardState, Storage};
/// use raft_storage::{LogStore, MultiLog, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let log = MultiLog::open(dir.path(), Options::default())?;
/// let (mut a, mut b) = (log.group(1)?, log.group(2)?);
/// let entry = |index| Entry { term: 1, index, payload: EntryPayload::Command("x".into()) };
/// // Group commit across groups: two groups' writes, one fdatasync.
/// a.write_unsynced(&[entry(1)], Some(&HardState { term: 1, vote: None, commit: 0 }))?;
/// b.write_unsynced(&[entry(1), entry(2)], None)?;
/// a.sync_domain().expect("a multi-log group shares its log").sync()?;
/// drop((a, b, log));
///
/// let log = MultiLog::open(dir.path(), Options::default())?;
/// assert_eq!(log.groups(), vec![1, 2]);
/// assert_eq!(log.group(2)?.last_index()?, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MultiLog {
    inner: Arc<Inner>,
}

/// What a [`MultiLog`] holds now, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiLogStats {
    /// How many groups it holds.
    pub groups: usize,
    /// How many segment files the shared log spans.
    pub segments: usize,
    /// The newest segment's sequence number.
    pub newest_segment: u64,
    /// How many `fdatasync`s of segments it did since it was opened.
    pub syncs: u64,
}

/// The shared state of a multi-log and its group handles. Lock order: `wal`, then
/// `groups`, then one group's state; `files` alone. Readers take only their group's
/// lock (and `files` briefly), so they never wait for another group's fsync.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) options: Options,
    domain_id: u64,
    pub(crate) wal: Mutex<WalState>,
    pub(crate) groups: Mutex<BTreeMap<u64, Arc<Mutex<GroupState>>>>,
    pub(crate) files: RwLock<BTreeMap<u64, Arc<SegFile>>>,
    _lock: DirLock,
}

impl fmt::Debug for MultiLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiLog")
            .field("dir", &self.inner.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

impl MultiLog {
    /// Opens (creating it if needed) the directory `dir` and recovers every group in it.
    /// `options`: the segment size, the durability, and the membership new groups start
    /// with (`cache_bytes` is not used: entries are read from the segments, which the
    /// page cache holds while they are recent).
    ///
    /// # Errors
    /// As [`crate::FileStorage::open`]: [`Error::Locked`], [`Error::ForeignFile`],
    /// [`Error::NewerFormat`], [`Error::Corrupt`] naming the file and offset,
    /// [`Error::MissingLogFile`], [`Error::GroupLogHole`], [`Error::HardStateBeyondLog`]...
    /// A torn write at the tail of the newest segment is cut off with a warning.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        Self::open_with_vfs(Arc::new(StdVfs), dir, options)
    }

    /// [`MultiLog::open`] through another file system (for fault injection).
    ///
    /// # Errors
    /// As [`MultiLog::open`].
    pub fn open_with_vfs(vfs: Arc<dyn Vfs>, dir: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        static NEXT_DOMAIN: AtomicU64 = AtomicU64::new(1);
        options.validate()?;
        let dir = dir.as_ref().to_owned();
        recover::refuse_foreign(&*vfs, &dir)?;
        vfs.create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let lock = match vfs.lock_dir(&dir).map_err(Error::io("lock", &dir))? {
            LockOutcome::Acquired(lock) => lock,
            LockOutcome::Held { holder } => return Err(Error::Locked { dir, holder }),
        };
        let recovered = recover::recover(&vfs, &dir, &options)?;
        let inner = Inner {
            dir,
            vfs,
            options,
            domain_id: NEXT_DOMAIN.fetch_add(1, Ordering::Relaxed),
            wal: Mutex::new(WalState {
                seq: recovered.seq,
                end: recovered.end,
                data_start: recovered.data_start,
                dirty: false,
                dir_dirty: false,
                poisoned: false,
                syncs: 0,
            }),
            groups: Mutex::new(
                recovered
                    .groups
                    .into_iter()
                    .map(|(id, g)| (id, Arc::new(Mutex::new(g))))
                    .collect(),
            ),
            files: RwLock::new(recovered.files),
            _lock: lock,
        };
        {
            let mut wal = inner.lock_wal();
            if recovered.needs_segment {
                // A fresh directory, or the newest segment was a torn write: start one.
                let r = inner
                    .create_segment(&mut wal, recovered.seq)
                    .and_then(|()| inner.sync_locked(&mut wal));
                inner.poison_on_err(&mut wal, r)?;
            }
        }
        Ok(MultiLog { inner: Arc::new(inner) })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The storage of group `id`, created (with the options' initial membership) if it
    /// does not exist; a creation is durable with the next sync (of any group), so that
    /// creating many groups costs one `fdatasync`. Handles of one group share its state.
    ///
    /// # Errors
    /// The creation's write failed; [`Error::Poisoned`] after an earlier failure.
    pub fn group(&self, id: u64) -> Result<GroupLog, Error> {
        let inner = &self.inner;
        let mut wal = inner.lock_wal();
        if let Some(g) = inner.lock_groups().get(&id) {
            return Ok(GroupLog::new(id, inner.clone(), g.clone()));
        }
        inner.check_writable(&wal)?;
        let meta = GroupMeta {
            group: id,
            snapshot: raft_core::SnapshotMeta {
                membership: inner.options.get_initial_membership().clone(),
                ..Default::default()
            },
            ..GroupMeta::default()
        };
        let (buf, _) = encode(&RecordRef::Group(&meta), &inner.dir)?;
        let r = inner.write_records(&mut wal, &buf, &[0, buf.len()], |_, _| {});
        inner.poison_on_err(&mut wal, r)?;
        let g = Arc::new(Mutex::new(GroupState::new(meta)));
        inner.lock_groups().insert(id, g.clone());
        Ok(GroupLog::new(id, inner.clone(), g))
    }

    /// The groups it holds, in order.
    pub fn groups(&self) -> Vec<u64> {
        self.inner.lock_groups().keys().copied().collect()
    }

    /// Removes group `id` durably, with its snapshot; its records become garbage, and
    /// its handles refuse writes. Removing a group that does not exist does nothing.
    ///
    /// # Errors
    /// The write failed; [`Error::Poisoned`] after an earlier failure.
    pub fn remove_group(&self, id: u64) -> Result<(), Error> {
        let inner = &self.inner;
        let mut wal = inner.lock_wal();
        inner.check_writable(&wal)?;
        let Some(g) = inner.lock_groups().get(&id).cloned() else {
            return Ok(());
        };
        let (buf, _) = encode(&RecordRef::Remove { group: id }, &inner.dir)?;
        let r = inner
            .write_records(&mut wal, &buf, &[0, buf.len()], |_, _| {})
            .and_then(|()| inner.sync_locked(&mut wal));
        inner.poison_on_err(&mut wal, r)?;
        inner.lock_groups().remove(&id);
        let snapshot_file = {
            let mut g = lock(&g);
            g.removed = true;
            g.log.clear();
            let s = &g.meta.snapshot;
            g.meta.snapshot_file.then(|| group_snapshot_name(id, s.index, s.term))
        };
        let r = (|| {
            if let Some(name) = snapshot_file {
                let path = inner.dir.join(name);
                inner.vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
                wal.dir_dirty = true;
            }
            inner.collect_garbage(&mut wal)?;
            inner.sync_locked(&mut wal)
        })();
        inner.poison_on_err(&mut wal, r)
    }

    /// Makes everything written by any group durable (as [`SyncDomain::sync`]).
    ///
    /// # Errors
    /// The fdatasync failed; the log then refuses writes until reopened.
    pub fn sync(&self) -> Result<(), Error> {
        self.inner.sync_all()
    }

    /// What it holds now.
    pub fn stats(&self) -> MultiLogStats {
        let wal = self.inner.lock_wal();
        let segments = self.inner.files.read().unwrap_or_else(|e| e.into_inner()).len();
        MultiLogStats {
            groups: self.inner.lock_groups().len(),
            segments,
            newest_segment: wal.seq,
            syncs: wal.syncs,
        }
    }
}

impl Inner {
    pub(crate) fn lock_groups(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Mutex<GroupState>>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn sync_all(&self) -> Result<(), Error> {
        let mut wal = self.lock_wal();
        self.check_writable(&wal)?;
        let r = self.sync_locked(&mut wal);
        self.poison_on_err(&mut wal, r)
    }
}

impl SyncDomain for Inner {
    fn id(&self) -> u64 {
        self.domain_id
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(self.sync_all()?)
    }
}
