//! A snapshot file: its layout, and reading its data without holding it whole.
//!
//! A snapshot file (format version 2) puts the data first and its description after
//! it, so that it can be written in one pass (the data is staged where it lies in the
//! file, see `snapshot_sink`):
//!
//! ```text
//! file header (24, base = index) | data [len] | meta record (12 + m) | len u64 LE | crc32(data) u32 LE
//! ```
//!
//! Version 1 files (`header | meta record | len | crc | data`) are still read.

use std::borrow::Borrow;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{LogIndex, Snapshot, SnapshotMeta};

use crate::error::{Corruption, Error};
use crate::format::{
    decode_record_header, encode_file_header_version, push_record, FileKind, FILE_HEADER_LEN, MAX_RECORD_LEN,
    RECORD_HEADER_LEN, SNAPSHOT_FORMAT_VERSION,
};
use crate::vfs::{OpenMode, Vfs, VfsFile};
use crate::whole_file::{check_header, read_record, read_upto};

/// Version 1's data header (after the meta record), and version 2's trailer: len, crc.
const LEN_CRC: usize = 12;

/// The header of the snapshot file at `index`, in the version this build writes.
pub(crate) fn header(index: LogIndex) -> [u8; FILE_HEADER_LEN] {
    encode_file_header_version(FileKind::Snapshot, SNAPSHOT_FORMAT_VERSION, index)
}

/// What follows the data (of `len` bytes with checksum `crc`) in a version 2 file: the
/// record of the encoded metadata `meta`, then `len` and `crc`.
pub(crate) fn trailer(meta: &[u8], len: u64, crc: u32) -> Vec<u8> {
    let mut tail = Vec::with_capacity(meta.len() + RECORD_HEADER_LEN + LEN_CRC);
    push_record(&mut tail, meta);
    tail.extend_from_slice(&len.to_le_bytes());
    tail.extend_from_slice(&crc.to_le_bytes());
    tail
}

/// Reads a snapshot file's metadata (and with `with_data`, its data, checked against
/// its checksum), checking it matches `expected`.
pub(crate) fn read_snapshot(
    vfs: &dyn Vfs,
    path: &Path,
    expected: &SnapshotMeta,
    with_data: bool,
) -> Result<Snapshot, Error> {
    let region = DataRegion::open(vfs, path, expected)?;
    let data = if with_data { region.read_all()? } else { Bytes::new() };
    Ok(Snapshot {
        meta: expected.clone(),
        data,
    })
}

/// Where a snapshot file's data lies, checked against the state file's metadata.
#[derive(Debug)]
pub(crate) struct DataRegion {
    pub(crate) file: Box<dyn VfsFile>,
    pub(crate) path: PathBuf,
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

impl DataRegion {
    /// Opens the snapshot file at `path` (version 1 or 2) and finds its data, checking
    /// its description matches `expected`. The data itself is not read.
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path, expected: &SnapshotMeta) -> Result<Self, Error> {
        let file = match vfs.open(path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingSnapshot {
                    path: path.to_owned(),
                    index: expected.index,
                    term: expected.term,
                })
            }
            Err(e) => return Err(Error::io("open", path)(e)),
        };
        let size = file.size().map_err(Error::io("stat", path))?;
        let corrupt = |offset: u64, kind| Error::Corrupt {
            path: path.to_owned(),
            offset,
            kind,
        };
        let head = read_upto(&*file, 0, FILE_HEADER_LEN, size, path)?;
        check_header(&head, FileKind::Snapshot, path)?;
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        let len_crc = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[..8]);
            (u64::from_le_bytes(w), u32::from_le_bytes([b[8], b[9], b[10], b[11]]))
        };
        let (meta_bytes, start, len, crc) = if version == 1 {
            // header | meta record | len | crc | data
            let at = FILE_HEADER_LEN;
            let rh = read_upto(&*file, at, RECORD_HEADER_LEN, size, path)?;
            if rh.len() < RECORD_HEADER_LEN {
                return Err(corrupt(at as u64, Corruption::Truncated));
            }
            let (meta_len, _) = decode_record_header(&rh).map_err(|k| corrupt(at as u64, k))?;
            let want = RECORD_HEADER_LEN + meta_len as usize + LEN_CRC;
            let rec = read_upto(&*file, at, want, size, path)?;
            if rec.len() < want {
                return Err(corrupt(at as u64, Corruption::Truncated));
            }
            let (meta, end) = read_record(&rec, 0, path)?;
            let (len, crc) = len_crc(&rec[end..end + LEN_CRC]);
            let start = (at + end + LEN_CRC) as u64;
            if start.checked_add(len) != Some(size) {
                return Err(corrupt(
                    (at + end) as u64,
                    Corruption::RecordLength(len.min(u64::from(u32::MAX)) as u32),
                ));
            }
            (meta.to_vec(), start, len, crc)
        } else {
            // header | data | meta record | len | crc
            let floor = (FILE_HEADER_LEN + RECORD_HEADER_LEN + LEN_CRC) as u64;
            if size < floor {
                return Err(corrupt(FILE_HEADER_LEN as u64, Corruption::Truncated));
            }
            let trailer_at = size - LEN_CRC as u64;
            let mut trailer = [0u8; LEN_CRC];
            file.read_exact_at(&mut trailer, trailer_at)
                .map_err(Error::io("read", path))?;
            let (len, crc) = len_crc(&trailer);
            let start = FILE_HEADER_LEN as u64;
            let meta_at = start
                .checked_add(len)
                .filter(|&m| m <= trailer_at - RECORD_HEADER_LEN as u64);
            let Some(meta_at) = meta_at else {
                return Err(corrupt(
                    trailer_at,
                    Corruption::RecordLength(len.min(u64::from(u32::MAX)) as u32),
                ));
            };
            let rec_len = trailer_at - meta_at;
            if rec_len > u64::from(MAX_RECORD_LEN) + RECORD_HEADER_LEN as u64 {
                return Err(corrupt(meta_at, Corruption::RecordLength(u32::MAX)));
            }
            let mut rec = vec![0u8; rec_len as usize];
            file.read_exact_at(&mut rec, meta_at).map_err(Error::io("read", path))?;
            let (meta, end) = read_record(&rec, 0, path).map_err(|e| match e {
                Error::Corrupt { kind, .. } => corrupt(meta_at, kind),
                e => e,
            })?;
            if end != rec.len() {
                return Err(corrupt(meta_at + end as u64, Corruption::TrailingBytes));
            }
            (meta.to_vec(), start, len, crc)
        };
        let meta: SnapshotMeta =
            postcard::from_bytes(&meta_bytes).map_err(|_| corrupt(FILE_HEADER_LEN as u64, Corruption::Undecodable))?;
        if &meta != expected {
            return Err(corrupt(FILE_HEADER_LEN as u64, Corruption::SnapshotMismatch));
        }
        Ok(DataRegion {
            file,
            path: path.to_owned(),
            start,
            len,
            crc,
        })
    }

    /// Up to `max` bytes of the data from `offset` (none past its end).
    pub(crate) fn read(&self, offset: u64, max: u64) -> Result<Bytes, Error> {
        let from = offset.min(self.len);
        let n = max.min(self.len - from);
        let n = usize::try_from(n).map_err(|_| Error::io("read", &self.path)(io::Error::other("chunk too large")))?;
        let mut buf = vec![0u8; n];
        self.file
            .read_exact_at(&mut buf, self.start + from)
            .map_err(Error::io("read", &self.path))?;
        Ok(Bytes::from(buf))
    }

    /// The whole data, checked against its checksum.
    pub(crate) fn read_all(&self) -> Result<Bytes, Error> {
        let data = self.read(0, self.len)?;
        if crc32fast::hash(&data) != self.crc {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                offset: self.start,
                kind: Corruption::PayloadChecksum,
            });
        }
        Ok(data)
    }

    /// A reader over the data that checks the checksum when it reaches the end.
    pub(crate) fn into_reader(self) -> Box<dyn Read + Send> {
        let failure = format!("{}: snapshot data fails its checksum", self.path.display());
        Box::new(CheckedReader::new(self.file, self.start, self.len, self.crc, failure))
    }
}

/// Reads `len` bytes of a file from `start`, in order; the read that reaches the end
/// fails (`InvalidData`, saying `failure`) if they do not match `crc`, and so does every
/// read after it, so a restore from a damaged file never completes. `F` is the file,
/// owned or borrowed.
pub(crate) struct CheckedReader<F> {
    file: F,
    start: u64,
    len: u64,
    pos: u64,
    crc: u32,
    hasher: crc32fast::Hasher,
    checked: bool,
    failure: String,
}

impl<F> CheckedReader<F> {
    /// A reader of `len` bytes of `file` from `start`, which must match `crc`.
    pub(crate) fn new(file: F, start: u64, len: u64, crc: u32, failure: String) -> Self {
        CheckedReader {
            file,
            start,
            len,
            pos: 0,
            crc,
            hasher: crc32fast::Hasher::new(),
            checked: false,
            failure,
        }
    }
}

impl<F: Borrow<dyn VfsFile>> Read for CheckedReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 {
            if !self.checked && std::mem::take(&mut self.hasher).finalize() != self.crc {
                return Err(io::Error::new(io::ErrorKind::InvalidData, self.failure.clone()));
            }
            self.checked = true;
            return Ok(0);
        }
        self.file.borrow().read_exact_at(&mut buf[..n], self.start + self.pos)?;
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// A snapshot file's data as a [`crate::ChunkSource`]: the open file, read by offset.
#[derive(Debug)]
pub(crate) struct RegionChunks {
    pub(crate) info: raft_core::SnapshotInfo,
    pub(crate) region: DataRegion,
}

impl crate::ChunkSource for RegionChunks {
    fn info(&self) -> &raft_core::SnapshotInfo {
        &self.info
    }

    fn read(&self, offset: u64, max_len: u64) -> Result<Bytes, raft_core::StorageError> {
        Ok(self.region.read(offset, max_len)?)
    }
}

/// A storage's current snapshot: its metadata, and the file holding its data if it has
/// one. The snapshot reads of [`raft_core::Storage`] and [`crate::LogStore`], shared by
/// [`crate::FileStorage`] and [`crate::GroupLog`].
pub(crate) struct Current<'a> {
    pub(crate) vfs: &'a dyn Vfs,
    pub(crate) meta: &'a SnapshotMeta,
    /// The snapshot file, if there is one (a never-snapshotted log has none).
    pub(crate) path: Option<PathBuf>,
}

impl Current<'_> {
    /// The snapshot file's data, if there is a snapshot file.
    pub(crate) fn region(&self) -> Result<Option<DataRegion>, Error> {
        match &self.path {
            Some(path) => DataRegion::open(self.vfs, path, self.meta).map(Some),
            None => Ok(None),
        }
    }

    /// [`raft_core::Storage::snapshot_info`].
    pub(crate) fn info(&self) -> Result<raft_core::SnapshotInfo, raft_core::StorageError> {
        let meta = self.meta.clone();
        Ok(match self.region()? {
            Some(r) => raft_core::SnapshotInfo {
                meta,
                len: r.len,
                crc: r.crc,
            },
            None => raft_core::SnapshotInfo { meta, len: 0, crc: 0 },
        })
    }

    /// [`raft_core::Storage::snapshot_chunk`].
    pub(crate) fn chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<Bytes, raft_core::StorageError> {
        if self.meta.index != index {
            return Err(raft_core::StorageError::Unavailable(index));
        }
        match self.region()? {
            Some(r) => Ok(r.read(offset, max_len)?),
            None => Ok(Bytes::new()),
        }
    }

    /// [`raft_core::Storage::snapshot`].
    pub(crate) fn snapshot(&self) -> Result<Snapshot, raft_core::StorageError> {
        match &self.path {
            Some(path) => Ok(read_snapshot(self.vfs, path, self.meta, true)?),
            None => Ok(Snapshot {
                meta: self.meta.clone(),
                data: Bytes::new(),
            }),
        }
    }

    /// [`crate::LogStore::snapshot_chunks`].
    pub(crate) fn chunks(&self) -> Result<Option<std::sync::Arc<dyn crate::ChunkSource>>, raft_core::StorageError> {
        let Some(region) = self.region()? else {
            return Ok(None);
        };
        let info = raft_core::SnapshotInfo {
            meta: self.meta.clone(),
            len: region.len,
            crc: region.crc,
        };
        Ok(Some(std::sync::Arc::new(RegionChunks { info, region })))
    }

    /// [`crate::LogStore::snapshot_reader`].
    pub(crate) fn reader(&self) -> Result<Box<dyn Read + Send>, raft_core::StorageError> {
        match self.region()? {
            Some(region) => Ok(region.into_reader()),
            None => Ok(Box::new(io::empty())),
        }
    }
}
