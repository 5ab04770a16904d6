//! The shared log's write side: records appended to the newest segment (buffered in
//! the page cache until a sync), one `fdatasync` for everything written since the last
//! sync by any group, rolling to a new segment that opens with a checkpoint, and the
//! deletion of segments no group needs any more.
//!
//! Crash safety rests on three rules:
//! - a segment is synced before the next one is created, so only the newest can end in
//!   a torn write;
//! - every segment opens with a checkpoint of every live group's state, so a segment
//!   whose entries are all dead can go without taking a hard state or snapshot with it;
//! - a segment is deleted only after a `Dropped` record naming it is durable, so that
//!   recovery tells a deleted segment from a lost one.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};

use tracing::{debug, info};

use super::record::{self, segment_name, GroupMeta, RecordRef};
use super::state::GroupState;
use super::Inner;
use crate::error::Error;
use crate::format::{encode_file_header, FileKind, FILE_HEADER_LEN, MAX_RECORD_LEN, RECORD_HEADER_LEN};
use crate::vfs::{OpenMode, VfsFile};

/// An open segment file, shared with readers.
#[derive(Debug)]
pub(crate) struct SegFile {
    pub(crate) path: PathBuf,
    pub(crate) file: Box<dyn VfsFile>,
}

/// The writer's state, behind `Inner::wal`.
#[derive(Debug)]
pub(crate) struct WalState {
    /// The newest segment's sequence number, and where its next record goes.
    pub(crate) seq: u64,
    pub(crate) end: u64,
    /// Where the newest segment's records after its checkpoint start: the checkpoint
    /// does not count towards the segment size (else with many groups a checkpoint
    /// larger than a segment would make every write roll).
    pub(crate) data_start: u64,
    /// Written but not yet synced: the segment's data, the directory's names.
    pub(crate) dirty: bool,
    pub(crate) dir_dirty: bool,
    /// A write failed: what is on disk is unknown, writes are refused.
    pub(crate) poisoned: bool,
    /// How many `fdatasync`s of segments were done.
    pub(crate) syncs: u64,
}

/// What a record written by [`Inner::write_records`] was, and where it went.
pub(crate) type Written = (u64, u64, u32);

impl Inner {
    pub(crate) fn lock_wal(&self) -> MutexGuard<'_, WalState> {
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn check_writable(&self, wal: &WalState) -> Result<(), Error> {
        if wal.poisoned {
            return Err(Error::Poisoned { dir: self.dir.clone() });
        }
        Ok(())
    }

    /// Marks the log poisoned if `r` failed.
    pub(crate) fn poison_on_err<T>(&self, wal: &mut WalState, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            tracing::error!(dir = %self.dir.display(), error = %e, "multi-log write failed; refusing further writes");
            wal.poisoned = true;
        }
        r
    }

    fn file(&self, seq: u64) -> Option<Arc<SegFile>> {
        self.files.read().unwrap_or_else(|e| e.into_inner()).get(&seq).cloned()
    }

    /// Appends framed records (`buf`, record `k` at `bounds[k]..bounds[k + 1]`) in
    /// order, rolling to a new segment when one is full; `applied(k, written)` is called
    /// for each record once written, before any roll (whose checkpoint must see it).
    pub(crate) fn write_records(
        &self,
        wal: &mut WalState,
        buf: &[u8],
        bounds: &[usize],
        mut applied: impl FnMut(usize, Written),
    ) -> Result<(), Error> {
        let size = self.options.get_segment_size();
        let n = bounds.len().saturating_sub(1);
        let mut i = 0;
        while i < n {
            let rec_len = (bounds[i + 1] - bounds[i]) as u64;
            if wal.end > wal.data_start && wal.end - wal.data_start + rec_len > size {
                self.roll(wal)?;
            }
            let base = wal.end;
            let used = base - wal.data_start;
            let mut j = i + 1;
            while j < n && used + (bounds[j + 1] - bounds[i]) as u64 <= size {
                j += 1;
            }
            let seg = self.file(wal.seq).ok_or_else(|| self.missing(wal.seq))?;
            seg.file
                .write_all_at(&buf[bounds[i]..bounds[j]], base)
                .map_err(Error::io("write", &seg.path))?;
            wal.end = base + (bounds[j] - bounds[i]) as u64;
            wal.dirty = true;
            for k in i..j {
                let at = base + (bounds[k] - bounds[i]) as u64;
                applied(k, (wal.seq, at, (bounds[k + 1] - bounds[k]) as u32));
            }
            i = j;
        }
        Ok(())
    }

    /// Writes one record (no roll: used for the small bookkeeping records).
    fn write_one(&self, wal: &mut WalState, rec: &RecordRef<'_>) -> Result<(), Error> {
        let (buf, _) = encode(rec, &self.dir)?;
        let seg = self.file(wal.seq).ok_or_else(|| self.missing(wal.seq))?;
        seg.file
            .write_all_at(&buf, wal.end)
            .map_err(Error::io("write", &seg.path))?;
        wal.end += buf.len() as u64;
        wal.dirty = true;
        Ok(())
    }

    fn missing(&self, seq: u64) -> Error {
        Error::MissingLogFile {
            path: self.dir.join(segment_name(seq)),
        }
    }

    /// Makes everything written durable: one `fdatasync` of the newest segment, and an
    /// `fsync` of the directory if names changed.
    pub(crate) fn sync_locked(&self, wal: &mut WalState) -> Result<(), Error> {
        let sync = self.options.sync();
        if wal.dirty {
            if sync {
                let seg = self.file(wal.seq).ok_or_else(|| self.missing(wal.seq))?;
                seg.file.sync_data().map_err(Error::io("fdatasync", &seg.path))?;
                wal.syncs += 1;
            }
            wal.dirty = false;
        }
        if wal.dir_dirty {
            if sync {
                self.vfs.sync_dir(&self.dir).map_err(Error::io("fsync", &self.dir))?;
            }
            wal.dir_dirty = false;
        }
        Ok(())
    }

    /// The segments, other than the newest, that hold no live entry.
    fn dead_segments(&self, wal: &WalState) -> Vec<u64> {
        let mut used = BTreeSet::from([wal.seq]);
        for g in self.groups.lock().unwrap_or_else(|e| e.into_inner()).values() {
            lock(g).segments_in_use(&mut used);
        }
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files.keys().filter(|s| !used.contains(s)).copied().collect()
    }

    fn remove_segments(&self, wal: &mut WalState, dead: &[u64]) -> Result<(), Error> {
        for &seq in dead {
            let path = self.dir.join(segment_name(seq));
            self.vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
            self.files.write().unwrap_or_else(|e| e.into_inner()).remove(&seq);
            wal.dir_dirty = true;
        }
        if !dead.is_empty() {
            info!(dir = %self.dir.display(), segments = ?dead, "removed multi-log segments no group needs");
        }
        Ok(())
    }

    /// Deletes the segments no group needs: a durable `Dropped` record first.
    pub(crate) fn collect_garbage(&self, wal: &mut WalState) -> Result<(), Error> {
        let dead = self.dead_segments(wal);
        if dead.is_empty() {
            return Ok(());
        }
        self.write_one(wal, &RecordRef::Dropped { segments: &dead })?;
        self.sync_locked(wal)?;
        self.remove_segments(wal, &dead)?;
        self.sync_locked(wal)
    }

    /// Moves on to a new segment: the full one is synced (with a `Dropped` record for
    /// the segments that can go, which then go), and the new one opens with a
    /// checkpoint of every group.
    fn roll(&self, wal: &mut WalState) -> Result<(), Error> {
        let dead = self.dead_segments(wal);
        if !dead.is_empty() {
            self.write_one(wal, &RecordRef::Dropped { segments: &dead })?;
        }
        self.sync_locked(wal)?;
        self.remove_segments(wal, &dead)?;
        let seq = wal.seq + 1;
        debug!(dir = %self.dir.display(), seq, "multi-log moves on to a new segment");
        self.create_segment(wal, seq)
    }

    /// Creates segment `seq` with its checkpoint and makes it the newest (durable with
    /// the next sync).
    pub(crate) fn create_segment(&self, wal: &mut WalState, seq: u64) -> Result<(), Error> {
        let groups: Vec<GroupMeta> = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|g| lock(g).meta_now())
            .collect();
        let older: Vec<u64> = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        let mut bytes = encode_file_header(FileKind::MultiSegment, seq).to_vec();
        let (cp, _) = encode(
            &RecordRef::Checkpoint {
                segments: &older,
                groups: &groups,
            },
            &self.dir,
        )?;
        bytes.extend_from_slice(&cp);
        let path = self.dir.join(segment_name(seq));
        let file = self
            .vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(Error::io("create", &path))?;
        file.write_all_at(&bytes, 0).map_err(Error::io("write", &path))?;
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, Arc::new(SegFile { path, file }));
        wal.seq = seq;
        wal.end = bytes.len() as u64;
        wal.data_start = wal.end;
        wal.dirty = true;
        wal.dir_dirty = true;
        Ok(())
    }
}

/// A group's lock (a panic elsewhere does not make its state unreadable).
pub(crate) fn lock(g: &std::sync::Mutex<GroupState>) -> MutexGuard<'_, GroupState> {
    g.lock().unwrap_or_else(|e| e.into_inner())
}

/// One framed record, and its payload's length.
pub(crate) fn encode(rec: &RecordRef<'_>, dir: &std::path::Path) -> Result<(Vec<u8>, u64), Error> {
    let mut out = Vec::new();
    record::push(&mut out, rec).map_err(|e| Error::io("encode", dir)(std::io::Error::other(e)))?;
    let len = (out.len() - RECORD_HEADER_LEN) as u64;
    Ok((out, len))
}

/// Encodes an entry record into `buf`, refusing one too large for a record.
pub(crate) fn push_entry(
    buf: &mut Vec<u8>,
    group: u64,
    entry: &raft_core::Entry,
    dir: &std::path::Path,
) -> Result<(), Error> {
    let start = buf.len();
    record::push(buf, &RecordRef::Entry { group, entry })
        .map_err(|e| Error::io("encode", dir)(std::io::Error::other(e)))?;
    let len = (buf.len() - start - RECORD_HEADER_LEN) as u64;
    if len > u64::from(MAX_RECORD_LEN) {
        buf.truncate(start);
        return Err(Error::EntryTooLarge {
            index: entry.index,
            size: len,
            limit: u64::from(MAX_RECORD_LEN),
        });
    }
    Ok(())
}

/// The first record of a segment starts here.
pub(crate) const FIRST_RECORD: u64 = FILE_HEADER_LEN as u64;
