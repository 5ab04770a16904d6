//! One segment file of the log: its name, its in-memory index of record offsets (the
//! entries themselves stay on disk), how it is scanned on open, and how entries are
//! read back.
//!
//! The torn-tail rule is in `record_scan`, shared with the multi-group log; this file
//! adds what a record of a single-group segment must hold (the next entry).

use std::path::{Path, PathBuf};

use raft_core::{Entry, LogIndex, Term, MAX_INDEX};

use crate::error::{Corruption, Error};
use crate::format::{check_record, decode_entry, FileKind, FILE_HEADER_LEN};
use crate::record_scan::{scan_header, scan_records, Reader, CHUNK};
use crate::terms::TermRuns;
use crate::vfs::{OpenMode, Vfs, VfsFile};

const SUFFIX: &str = ".wal";

/// The file name of the segment whose first entry is `first_index`.
pub(crate) fn segment_name(first_index: LogIndex) -> String {
    format!("{first_index:020}{SUFFIX}")
}

/// The first index a segment file name stands for.
pub(crate) fn parse_segment_name(name: &str) -> Option<LogIndex> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Entries read so far and the byte budget of [`raft_core::Storage::entries`].
#[derive(Debug)]
pub(crate) struct Gather {
    pub(crate) out: Vec<Entry>,
    total: u64,
    max: u64,
    pub(crate) full: bool,
}

impl Gather {
    pub(crate) fn new(max_bytes: u64) -> Self {
        Gather {
            out: Vec::new(),
            total: 0,
            max: max_bytes,
            full: false,
        }
    }

    /// Adds an entry unless it would go over the budget (the first always fits).
    pub(crate) fn push(&mut self, e: Entry) -> bool {
        self.total += e.size();
        if !self.out.is_empty() && self.total > self.max {
            self.full = true;
            return false;
        }
        self.out.push(e);
        true
    }

    /// The budget left.
    pub(crate) fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.total)
    }
}

/// One open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: Box<dyn VfsFile>,
    pub(crate) first_index: LogIndex,
    /// `offsets[i]` is where the record of entry `first_index + i` starts.
    offsets: Vec<u32>,
    /// Where the last record ends: the next write goes here.
    pub(crate) end: u64,
}

/// What scanning a segment found.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// The segment, with its torn tail (if any) cut off.
    Segment(Segment),
    /// The last segment's header itself is torn: the file holds nothing acknowledged.
    TornHeader,
}

impl Segment {
    /// Creates an empty segment file and writes its header (synced with the first batch).
    pub(crate) fn create(vfs: &dyn Vfs, dir: &Path, first_index: LogIndex) -> Result<Segment, Error> {
        let path = dir.join(segment_name(first_index));
        let file = vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(Error::io("create", &path))?;
        let header = crate::format::encode_file_header(FileKind::Segment, first_index);
        file.write_all_at(&header, 0).map_err(Error::io("write", &path))?;
        Ok(Segment {
            path,
            file,
            first_index,
            offsets: Vec::new(),
            end: FILE_HEADER_LEN as u64,
        })
    }

    /// How many entries the segment holds.
    pub(crate) fn count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The index the entry after this segment's last one gets.
    pub(crate) fn next_index(&self) -> LogIndex {
        self.first_index + self.count()
    }

    /// Where the record of `index` starts (`end` for the index after the last).
    pub(crate) fn offset_of(&self, index: LogIndex) -> u64 {
        let i = (index - self.first_index) as usize;
        self.offsets.get(i).map_or(self.end, |&o| u64::from(o))
    }

    /// Records that a record was written at `offset` (the segment's end) and is `len` long.
    pub(crate) fn push_record(&mut self, offset: u64, len: u64) {
        debug_assert_eq!(offset, self.end);
        self.offsets.push(offset as u32);
        self.end = offset + len;
    }

    /// Forgets the entries from `index` on; returns the new end of the file.
    pub(crate) fn truncate_entries(&mut self, index: LogIndex) -> u64 {
        let end = self.offset_of(index);
        self.offsets.truncate((index - self.first_index) as usize);
        self.end = end;
        end
    }

    /// Reads entries `low..high` (all in this segment) into `gather`, until its budget.
    pub(crate) fn read(&self, low: LogIndex, high: LogIndex, gather: &mut Gather) -> Result<(), Error> {
        let mut index = low;
        let mut buf = Vec::new();
        while index < high && !gather.full {
            let start = self.offset_of(index);
            let cap = gather.remaining().clamp(64 << 10, CHUNK);
            let mut stop = index + 1;
            while stop < high && self.offset_of(stop + 1) - start <= cap {
                stop += 1;
            }
            buf.resize((self.offset_of(stop) - start) as usize, 0);
            self.file
                .read_exact_at(&mut buf, start)
                .map_err(Error::io("read", &self.path))?;
            for i in index..stop {
                let at = (self.offset_of(i) - start) as usize;
                let end = (self.offset_of(i + 1) - start) as usize;
                let entry = self.decode_at(&buf[at..end], start + at as u64, i)?;
                if !gather.push(entry) {
                    return Ok(());
                }
            }
            index = stop;
        }
        Ok(())
    }

    /// Checks and decodes one record read back from disk (it was valid when scanned or
    /// written, so any problem now is damage after the fact).
    fn decode_at(&self, rec: &[u8], offset: u64, index: LogIndex) -> Result<Entry, Error> {
        let corrupt = |kind| Error::Corrupt {
            path: self.path.clone(),
            offset,
            kind,
        };
        let payload = check_record(rec).map_err(corrupt)?;
        let entry = decode_entry(payload).ok_or_else(|| corrupt(Corruption::Undecodable))?;
        if entry.index != index {
            return Err(corrupt(Corruption::UnexpectedIndex {
                expected: index,
                found: entry.index,
            }));
        }
        Ok(entry)
    }

    /// Opens and checks a segment on startup, filling `terms` with its entries' terms.
    /// `is_last` enables the torn-tail rule (see the module docs); `sync` makes the
    /// cut of a torn tail durable.
    pub(crate) fn scan(
        vfs: &dyn Vfs,
        path: PathBuf,
        name_index: LogIndex,
        is_last: bool,
        sync: bool,
        terms: &mut TermRuns,
    ) -> Result<Scanned, Error> {
        let file = vfs.open(&path, OpenMode::ReadWrite).map_err(Error::io("open", &path))?;
        let len = file.size().map_err(Error::io("stat", &path))?;
        let mut r = Reader::new(&*file, len);
        let first_index = match scan_header(&mut r, FileKind::Segment, is_last, &path)? {
            None => return Ok(Scanned::TornHeader),
            Some(first) if first == name_index => first,
            Some(first) => {
                return Err(Error::Corrupt {
                    path,
                    offset: 0,
                    kind: Corruption::NameMismatch {
                        name: name_index,
                        header: first,
                    },
                })
            }
        };

        // Recovery checked the name (so the header) is in 1..=MAX_INDEX; a record is at
        // least 13 bytes, so the index below cannot overflow.
        let mut offsets: Vec<u32> = Vec::new();
        let accept = |pos: u64, payload: &[u8]| {
            let index = first_index + offsets.len() as u64;
            let Ok(pos32) = u32::try_from(pos) else {
                return Err(Corruption::SegmentTooLong);
            };
            match peek_term_index(payload) {
                Some((_, found)) if found == index && index > MAX_INDEX => Err(Corruption::IndexBeyondLimit { index }),
                Some((0, found)) if found == index => Err(Corruption::ZeroTerm { index }),
                // Raft's terms never go down along a log (a leader's log is sorted by
                // term, and a follower's matches it).
                Some((term, found)) if found == index && terms.last_term().is_some_and(|p| term < p) => {
                    Err(Corruption::TermGoesDown {
                        index,
                        term,
                        previous: terms.last_term().unwrap_or_default(),
                    })
                }
                Some((term, found)) if found == index => {
                    offsets.push(pos32);
                    terms.push(index, term);
                    Ok(())
                }
                Some((_, found)) => Err(Corruption::UnexpectedIndex { expected: index, found }),
                None => Err(Corruption::Undecodable),
            }
        };
        let pos = scan_records(&mut r, FILE_HEADER_LEN as u64, is_last, sync, &path, accept)?;
        drop(r);
        Ok(Scanned::Segment(Segment {
            path,
            file,
            first_index,
            offsets,
            end: pos,
        }))
    }
}

/// The term and index at the start of an encoded entry, without decoding its payload
/// (the checksum already vouches for the rest).
fn peek_term_index(payload: &[u8]) -> Option<(Term, LogIndex)> {
    postcard::take_from_bytes::<(Term, LogIndex)>(payload)
        .ok()
        .map(|(ti, _)| ti)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        assert_eq!(segment_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.wal"), None);
        assert_eq!(parse_segment_name("00000000000000000042.log"), None);
    }
}
