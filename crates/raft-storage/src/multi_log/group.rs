//! [`GroupLog`]: one group's storage in a [`super::MultiLog`].

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raft_core::{
    Entry, HardState, InitialState, LogIndex, Snapshot, SnapshotInfo, SnapshotMeta, Storage, StorageError, Term,
};
use tracing::{debug, info};

use super::record::{self, group_snapshot_name, GroupMeta, Record, RecordRef};
use super::state::{GroupState, Loc};
use super::wal::{encode, lock, push_entry};
use super::Inner;
use crate::append_rules::entries_to_append;
use crate::error::{Corruption, Error};
use crate::format::check_record;
use crate::log_store::{ChunkSource, LogStore, SyncDomain};
use crate::record_scan::CHUNK;
use crate::segment::Gather;
use crate::snapshot_file::Current;
use crate::snapshot_sink::{SnapshotSink, StagedSnapshot};
use crate::state::is_impossible_snapshot;

/// One Raft group's log, hard state and snapshot in a [`super::MultiLog`]: a
/// [`LogStore`] like [`crate::FileStorage`], whose writes share the multi-log's WAL.
/// [`LogStore::write_unsynced`] writes without waiting, and the
/// [`LogStore::sync_domain`]'s `sync` makes the writes of every group durable at once;
/// `append` and `set_hard_state` are a write and a sync.
///
/// A handle is cheap (two `Arc`s); reads take only this group's lock, so a reader
/// never waits for another group's write or sync.
pub struct GroupLog {
    id: u64,
    inner: Arc<Inner>,
    state: Arc<Mutex<GroupState>>,
}

impl fmt::Debug for GroupLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = lock(&self.state);
        f.debug_struct("GroupLog")
            .field("dir", &self.inner.dir)
            .field("group", &self.id)
            .field("snapshot", &(g.meta.snapshot.index, g.meta.snapshot.term))
            .field("last_index", &g.last_index())
            .field("hard_state", &g.meta.hard_state)
            .finish()
    }
}

/// What a record of a write is about.
enum Kind {
    Entry(usize),
    HardState,
}

impl GroupLog {
    pub(crate) fn new(id: u64, inner: Arc<Inner>, state: Arc<Mutex<GroupState>>) -> Self {
        GroupLog { id, inner, state }
    }

    /// The group's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        lock(&self.state).meta.hard_state.clone()
    }

    fn group(&self) -> std::sync::MutexGuard<'_, GroupState> {
        lock(&self.state)
    }

    fn check_live(&self, g: &GroupState) -> Result<(), Error> {
        if g.removed {
            return Err(Error::GroupRemoved {
                dir: self.inner.dir.clone(),
                group: self.id,
            });
        }
        Ok(())
    }

    fn write(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        let mut wal = inner.lock_wal();
        inner.check_writable(&wal)?;
        let mut buf = Vec::new();
        let mut bounds = vec![0];
        let mut kinds = Vec::new();
        let entries = {
            let g = self.group();
            self.check_live(&g)?;
            let entries = entries_to_append(entries, g.meta.snapshot.index, g.last_index(), |i| g.term(i))?;
            for (k, e) in entries.iter().enumerate() {
                push_entry(&mut buf, self.id, e, &inner.dir)?;
                bounds.push(buf.len());
                kinds.push(Kind::Entry(k));
            }
            if let Some(hs) = hard_state.filter(|hs| **hs != g.meta.hard_state) {
                let rec = RecordRef::HardState {
                    group: self.id,
                    hard_state: hs,
                };
                record::push(&mut buf, &rec).map_err(|e| Error::io("encode", &inner.dir)(std::io::Error::other(e)))?;
                bounds.push(buf.len());
                kinds.push(Kind::HardState);
            }
            entries
        };
        let state = &self.state;
        let r = inner.write_records(&mut wal, &buf, &bounds, |k, (seq, offset, len)| {
            let mut g = lock(state);
            match kinds[k] {
                Kind::Entry(i) => {
                    let e = &entries[i];
                    g.put(
                        e.index,
                        Loc {
                            seq,
                            offset,
                            len,
                            term: e.term,
                        },
                    );
                }
                Kind::HardState => {
                    if let Some(hs) = hard_state {
                        g.meta.hard_state = hs.clone();
                    }
                }
            }
        });
        Ok(inner.poison_on_err(&mut wal, r)?)
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(self.inner.sync_all()?)
    }

    fn snapshot_name(&self, meta: &SnapshotMeta) -> String {
        group_snapshot_name(self.id, meta.index, meta.term)
    }

    /// The group's current snapshot and its file.
    fn current<'a>(&'a self, g: &'a GroupState) -> Current<'a> {
        let meta = &g.meta.snapshot;
        Current {
            vfs: &*self.inner.vfs,
            meta,
            path: g
                .meta
                .snapshot_file
                .then(|| self.inner.dir.join(self.snapshot_name(meta))),
        }
    }

    fn install(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), Error> {
        let inner = self.inner.clone();
        let mut wal = inner.lock_wal();
        inner.check_writable(&wal)?;
        let (index, term) = (meta.index, meta.term);
        if is_impossible_snapshot(index, term) {
            return Err(Error::ImpossibleSnapshot { index, term });
        }
        let (new, old_file) = {
            let g = self.group();
            self.check_live(&g)?;
            let old = &g.meta.snapshot;
            if index < old.index {
                debug!(
                    group = self.id,
                    index,
                    current = old.index,
                    "ignoring a snapshot older than the current one"
                );
                drop(g);
                // Whatever was written before (this group's creation) is durable on return.
                let r = inner.sync_locked(&mut wal);
                return inner.poison_on_err(&mut wal, r);
            }
            let keep = g.term(index) == Some(term);
            if !keep {
                info!(group = self.id, index, term, "snapshot replaces the group's whole log");
            }
            let mut hard_state = g.meta.hard_state.clone();
            hard_state.commit = hard_state.commit.max(index);
            let new = GroupMeta {
                group: self.id,
                hard_state,
                snapshot: meta.clone(),
                snapshot_file: true,
                last_index: if keep { g.last_index().max(index) } else { index },
            };
            (new, g.meta.snapshot_file.then(|| self.snapshot_name(old)))
        };
        let name = self.snapshot_name(meta);
        let r = staged.write_file_named(&inner.vfs, &inner.dir, name.clone(), meta, inner.options.sync());
        inner.poison_on_err(&mut wal, r)?;
        // The commit point: the record naming the new snapshot.
        let r = encode(&RecordRef::Group(&new), &inner.dir).and_then(|(buf, _)| {
            inner.write_records(&mut wal, &buf, &[0, buf.len()], |_, _| {})?;
            inner.sync_locked(&mut wal)
        });
        inner.poison_on_err(&mut wal, r)?;
        {
            let mut g = self.group();
            g.bound(index, new.last_index);
            g.meta = new;
        }
        let r = (|| {
            if let Some(old) = old_file.filter(|old| *old != name) {
                let path = inner.dir.join(old);
                inner.vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
                wal.dir_dirty = true;
            }
            inner.collect_garbage(&mut wal)?;
            inner.sync_locked(&mut wal)
        })();
        inner.poison_on_err(&mut wal, r)
    }

    /// Reads entries `low..high` (all in the log) into `gather`, until its budget:
    /// records that lie back to back in one segment are read with one read, up to
    /// about a megabyte at a time.
    fn read_entries(&self, g: &GroupState, low: LogIndex, high: LogIndex, gather: &mut Gather) -> Result<(), Error> {
        let mut index = low;
        let mut buf = Vec::new();
        while index < high && !gather.full {
            let Some(first) = g.loc(index) else { break };
            let seg = self
                .inner
                .files
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&first.seq)
                .cloned();
            let seg = seg.ok_or_else(|| Error::MissingLogFile {
                path: self.inner.dir.join(record::segment_name(first.seq)),
            })?;
            // The run of records back to back from `index`.
            let mut stop = index + 1;
            let mut end = first.offset + u64::from(first.len);
            let cap = gather.remaining().clamp(64 << 10, CHUNK);
            while stop < high && end - first.offset < cap {
                match g.loc(stop) {
                    Some(l) if l.seq == first.seq && l.offset == end => {
                        end += u64::from(l.len);
                        stop += 1;
                    }
                    _ => break,
                }
            }
            buf.resize((end - first.offset) as usize, 0);
            seg.file
                .read_exact_at(&mut buf, first.offset)
                .map_err(Error::io("read", &seg.path))?;
            let mut at = 0usize;
            for i in index..stop {
                let Some(loc) = g.loc(i) else { break };
                let rec = &buf[at..at + loc.len as usize];
                at += loc.len as usize;
                if !gather.push(self.decode_entry(rec, i, &seg.path, loc.offset)?) {
                    return Ok(());
                }
            }
            index = stop;
        }
        Ok(())
    }

    /// Checks and decodes the record of entry `index` read back from `path` at `offset`
    /// (it was valid when written or scanned, so any problem now is damage since).
    fn decode_entry(&self, rec: &[u8], index: LogIndex, path: &std::path::Path, offset: u64) -> Result<Entry, Error> {
        let corrupt = |kind| Error::Corrupt {
            path: path.to_owned(),
            offset,
            kind,
        };
        let payload = check_record(rec).map_err(corrupt)?;
        match record::decode(payload) {
            Some(Record::Entry { group, entry }) if group == self.id && entry.index == index => Ok(entry),
            Some(Record::Entry { entry, .. }) => Err(corrupt(Corruption::UnexpectedIndex {
                expected: index,
                found: entry.index,
            })),
            _ => Err(corrupt(Corruption::Undecodable)),
        }
    }
}

impl Storage for GroupLog {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        let g = self.group();
        Ok(InitialState {
            hard_state: g.meta.hard_state.clone(),
            membership: g.meta.snapshot.membership.clone(),
        })
    }

    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let g = self.group();
        if low <= g.meta.snapshot.index {
            return Err(StorageError::Compacted(low));
        }
        if high > g.last_index() + 1 {
            return Err(StorageError::Unavailable(high));
        }
        let mut gather = Gather::new(max_bytes);
        if low < high {
            self.read_entries(&g, low, high, &mut gather)?;
        }
        Ok(gather.out)
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        let g = self.group();
        if index < g.meta.snapshot.index {
            return Err(StorageError::Compacted(index));
        }
        g.term(index).ok_or(StorageError::Unavailable(index))
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.group().meta.snapshot.index + 1)
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.group().last_index())
    }

    fn snapshot_info(&self) -> Result<SnapshotInfo, StorageError> {
        let g = self.group();
        self.current(&g).info()
    }

    fn snapshot_chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        let g = self.group();
        self.current(&g).chunk(index, offset, max_len)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        let g = self.group();
        self.current(&g).snapshot()
    }
}

impl LogStore for GroupLog {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.write(entries, None)?;
        self.sync()
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.write(&[], Some(hard_state))?;
        self.sync()
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        Ok(self.install(&snapshot.meta, StagedSnapshot::from_bytes(snapshot.data.clone()))?)
    }

    fn write_unsynced(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StorageError> {
        self.write(entries, hard_state)
    }

    fn sync_domain(&self) -> Option<Arc<dyn SyncDomain>> {
        Some(self.inner.clone())
    }

    fn snapshot_sink(&self) -> Result<SnapshotSink, StorageError> {
        Ok(SnapshotSink::file(
            self.inner.vfs.clone(),
            &self.inner.dir,
            self.inner.options.sync(),
        )?)
    }

    fn install_snapshot(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), StorageError> {
        Ok(self.install(meta, staged)?)
    }

    fn snapshot_chunks(&self) -> Result<Option<Arc<dyn ChunkSource>>, StorageError> {
        let g = self.group();
        self.current(&g).chunks()
    }

    fn snapshot_reader(&self) -> Result<Box<dyn std::io::Read + Send>, StorageError> {
        let g = self.group();
        self.current(&g).reader()
    }
}
