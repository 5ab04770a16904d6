//! The segmented log: appends with group commit, suffix truncation, compaction by
//! whole segments, and reads by index through the segments' offset indexes.
//!
//! Every change keeps one invariant for crash safety: what is on disk is always a
//! contiguous run of entries, so recovery never meets a hole that is not damage.
//! - A batch is written to the last segment and synced before a new segment is created
//!   (so only the last segment can end in a torn write).
//! - Truncation removes whole segments newest first, syncs the directory, and only then
//!   cuts the segment that stays.
//! - Compaction removes whole segments oldest first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::{Entry, LogIndex, Term};

use crate::error::Error;
use crate::format::{push_entry_record, MAX_RECORD_LEN};
use crate::segment::{Gather, Segment};
use crate::terms::TermRuns;
use crate::vfs::Vfs;

#[derive(Debug)]
pub(crate) struct Wal {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    sync: bool,
    segment_size: u64,
    segments: Vec<Segment>,
    terms: TermRuns,
    next_index: LogIndex,
    /// Encoded records of the batch being appended, and where each one starts.
    buf: Vec<u8>,
    bounds: Vec<usize>,
}

impl Wal {
    /// A log made of recovered segments (contiguous, in order) whose terms are in `terms`.
    pub(crate) fn new(
        vfs: Arc<dyn Vfs>,
        dir: PathBuf,
        sync: bool,
        segment_size: u64,
        segments: Vec<Segment>,
        terms: TermRuns,
        next_index: LogIndex,
    ) -> Self {
        Wal {
            vfs,
            dir,
            sync,
            segment_size,
            segments,
            terms,
            next_index,
            buf: Vec::new(),
            bounds: Vec::new(),
        }
    }

    /// The first index on disk (`next_index` if the log is empty).
    pub(crate) fn first_index(&self) -> LogIndex {
        self.segments.first().map_or(self.next_index, |s| s.first_index)
    }

    /// The index the next appended entry gets.
    pub(crate) fn next_index(&self) -> LogIndex {
        self.next_index
    }

    /// The term of the entry at `index`, if it is on disk.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index < self.first_index() {
            return None;
        }
        self.terms.term(index)
    }

    /// The segment file holding entry `index` and the offset of its record, if on disk.
    pub(crate) fn locate(&self, index: LogIndex) -> Option<(&Path, u64)> {
        if index < self.first_index() || index >= self.next_index {
            return None;
        }
        let k = self
            .segments
            .partition_point(|s| s.first_index <= index)
            .checked_sub(1)?;
        let seg = self.segments.get(k)?;
        Some((seg.path.as_path(), seg.offset_of(index)))
    }

    /// The first segment file, for error messages.
    pub(crate) fn first_path(&self) -> Option<&Path> {
        self.segments.first().map(|s| s.path.as_path())
    }

    /// The last segment file, for error messages.
    pub(crate) fn last_path(&self) -> Option<&Path> {
        self.segments.last().map(|s| s.path.as_path())
    }

    /// How many segment files the log spans.
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Reads entries `low..high` (all on disk) into `gather`, until its budget.
    pub(crate) fn read(&self, low: LogIndex, high: LogIndex, gather: &mut Gather) -> Result<(), Error> {
        let mut index = low;
        while index < high && !gather.full {
            let k = self.segments.partition_point(|s| s.first_index <= index);
            let Some(seg) = k.checked_sub(1).and_then(|k| self.segments.get(k)) else {
                break;
            };
            let stop = high.min(seg.next_index());
            seg.read(index, stop, gather)?;
            index = stop;
        }
        Ok(())
    }

    /// Appends consecutive entries starting at or before `next_index`, replacing what
    /// is stored from their first index on; returns once they are durable.
    ///
    /// # Errors
    /// [`Error::EntryTooLarge`] before anything is written; IO errors after which the
    /// disk holds a prefix of the old log followed by a prefix of the new entries.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<(), Error> {
        let Some(first) = entries.first() else { return Ok(()) };
        self.buf.clear();
        self.bounds.clear();
        self.bounds.push(0);
        for e in entries {
            push_entry_record(&mut self.buf, e).map_err(|size| Error::EntryTooLarge {
                index: e.index,
                size,
                limit: u64::from(MAX_RECORD_LEN),
            })?;
            self.bounds.push(self.buf.len());
        }
        if first.index < self.next_index {
            self.truncate_from(first.index)?;
        }
        let mut created = false;
        let mut i = 0;
        while i < entries.len() {
            let record_len = (self.bounds[i + 1] - self.bounds[i]) as u64;
            let full = self
                .segments
                .last()
                .is_none_or(|s| s.count() > 0 && s.end + record_len > self.segment_size);
            if full {
                // The segment we leave was synced with its last batch (below), so only
                // the newest segment can ever end in a torn write.
                self.segments
                    .push(Segment::create(&*self.vfs, &self.dir, entries[i].index)?);
                created = true;
            }
            let Some(seg) = self.segments.last_mut() else { break };
            let base = seg.end;
            let mut j = i + 1;
            while j < entries.len() && base + (self.bounds[j + 1] - self.bounds[i]) as u64 <= self.segment_size {
                j += 1;
            }
            seg.file
                .write_all_at(&self.buf[self.bounds[i]..self.bounds[j]], base)
                .map_err(Error::io("write", &seg.path))?;
            if self.sync {
                seg.file.sync_data().map_err(Error::io("fdatasync", &seg.path))?;
            }
            for (k, e) in entries.iter().enumerate().take(j).skip(i) {
                let at = base + (self.bounds[k] - self.bounds[i]) as u64;
                seg.push_record(at, (self.bounds[k + 1] - self.bounds[k]) as u64);
                self.terms.push(e.index, e.term);
            }
            self.next_index = entries[j - 1].index + 1;
            i = j;
        }
        if created {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Removes the entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) -> Result<(), Error> {
        let mut removed = false;
        // Newest first: a crash in between leaves a shorter log, never a hole.
        while let Some(seg) = self.segments.pop_if_first_at_or_after(index) {
            self.vfs
                .remove_file(&seg.path)
                .map_err(Error::io("remove", &seg.path))?;
            removed = true;
        }
        if removed {
            // Before cutting the segment that stays: else a crash could keep a later
            // segment after a shortened one.
            self.sync_dir()?;
        }
        if let Some(seg) = self.segments.last_mut() {
            if seg.next_index() > index {
                let end = seg.truncate_entries(index);
                seg.file.set_len(end).map_err(Error::io("truncate", &seg.path))?;
                if self.sync {
                    seg.file.sync_data().map_err(Error::io("fdatasync", &seg.path))?;
                }
            }
        }
        self.terms.truncate_from(index);
        self.next_index = index;
        Ok(())
    }

    /// Deletes the segments whose entries are all at or before `index` (they are in a
    /// snapshot), oldest first. Returns how many.
    pub(crate) fn remove_through(&mut self, index: LogIndex) -> Result<usize, Error> {
        let n = self.segments.iter().take_while(|s| s.next_index() <= index + 1).count();
        for seg in self.segments.drain(..n) {
            self.vfs
                .remove_file(&seg.path)
                .map_err(Error::io("remove", &seg.path))?;
        }
        if n > 0 {
            self.sync_dir()?;
        }
        let first = self.first_index();
        self.terms.drop_before(first);
        Ok(n)
    }

    /// Deletes every segment, newest first; the next entry gets index `next`.
    pub(crate) fn clear(&mut self, next: LogIndex) -> Result<(), Error> {
        let had = !self.segments.is_empty();
        while let Some(seg) = self.segments.pop() {
            self.vfs
                .remove_file(&seg.path)
                .map_err(Error::io("remove", &seg.path))?;
        }
        if had {
            self.sync_dir()?;
        }
        self.terms.reset(next);
        self.next_index = next;
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), Error> {
        if self.sync {
            self.vfs.sync_dir(&self.dir).map_err(Error::io("fsync", &self.dir))?;
        }
        Ok(())
    }
}

/// `Vec::pop_if` for the segments at or after an index (std's is newer than our MSRV).
trait PopIfFirstAtOrAfter {
    fn pop_if_first_at_or_after(&mut self, index: LogIndex) -> Option<Segment>;
}

impl PopIfFirstAtOrAfter for Vec<Segment> {
    fn pop_if_first_at_or_after(&mut self, index: LogIndex) -> Option<Segment> {
        if self.last().is_some_and(|s| s.first_index >= index) {
            self.pop()
        } else {
            None
        }
    }
}
