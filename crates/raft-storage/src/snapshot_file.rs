//! Snapshot data as a stream, so that no snapshot is ever held whole in memory.
//!
//! A [`SnapshotSink`] is where a snapshot's data goes as it is made (by a state
//! machine) or received (chunk by chunk from a leader): a temp file in the data
//! directory, or memory for a storage without files. [`SnapshotSink::finish`] gives a
//! [`StagedSnapshot`], which can be read back (for the state machine to check and
//! restore it) and is then installed by [`crate::LogStore::install_snapshot`].
//!
//! A snapshot file written this way (format version 2) puts the data first and its
//! description after it, so it can be written in one pass:
//!
//! ```text
//! file header (24, base = index) | data [len] | meta record (12 + m) | len u64 LE | crc32(data) u32 LE
//! ```
//!
//! Version 1 files (`header | meta record | len | crc | data`) are still read.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use raft_core::{SnapshotMeta, StorageError};

use crate::error::{Corruption, Error};
use crate::format::{decode_record_header, encode_file_header_version, push_record, FileKind, FILE_HEADER_LEN};
use crate::format::{MAX_RECORD_LEN, RECORD_HEADER_LEN};
use crate::state::{check_header, read_record, read_upto, snapshot_name, TMP_SUFFIX};
use crate::vfs::{OpenMode, Vfs, VfsFile};

/// The snapshot file format version this build writes.
pub(crate) const SNAPSHOT_FORMAT_VERSION: u32 = 2;
/// Version 1's data header (after the meta record), and version 2's trailer: len, crc.
const LEN_CRC: usize = 12;
/// The prefix of a staging file's name (it ends in `.tmp`).
pub(crate) const STAGING_PREFIX: &str = "snapshot-staging-";

/// Where a snapshot's data is written as it is produced. Write it with
/// [`std::io::Write`], then [`SnapshotSink::finish`] it. Dropped unfinished, its temp
/// file is removed.
#[derive(Debug)]
pub struct SnapshotSink {
    place: Place,
    len: u64,
    hasher: crc32fast::Hasher,
}

#[derive(Debug)]
enum Place {
    Memory(Vec<u8>),
    File(TempFile),
}

/// A staging file, removed when dropped unless it was installed.
#[derive(Debug)]
pub(crate) struct TempFile {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    path: PathBuf,
    file: Box<dyn VfsFile>,
    /// Whether writes are made durable (`Options::sync`).
    sync: bool,
    installed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.installed {
            let _ = self.vfs.remove_file(&self.path);
        }
    }
}

impl SnapshotSink {
    /// A sink that keeps the data in memory (for storages without files).
    pub fn memory() -> Self {
        SnapshotSink {
            place: Place::Memory(Vec::new()),
            len: 0,
            hasher: crc32fast::Hasher::new(),
        }
    }

    /// A sink backed by a new staging file in `dir`.
    pub(crate) fn file(vfs: Arc<dyn Vfs>, dir: &Path, sync: bool) -> Result<Self, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{STAGING_PREFIX}{}-{n}{TMP_SUFFIX}", std::process::id()));
        let file = vfs
            .open(&path, OpenMode::CreateTruncate)
            .map_err(Error::io("create", &path))?;
        Ok(SnapshotSink {
            place: Place::File(TempFile {
                vfs,
                dir: dir.to_owned(),
                path,
                file,
                sync,
                installed: false,
            }),
            len: 0,
            hasher: crc32fast::Hasher::new(),
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The CRC-32 of the bytes written so far.
    pub fn crc(&self) -> u32 {
        self.hasher.clone().finalize()
    }

    /// The data is complete: a staging file is made durable here (by the thread that
    /// wrote it), so that installing it later costs only a small write.
    ///
    /// # Errors
    /// A failed fdatasync, naming the file.
    pub fn finish(self) -> Result<StagedSnapshot, StorageError> {
        let crc = self.crc();
        let place = match self.place {
            Place::Memory(v) => Staged::Memory(Bytes::from(v)),
            Place::File(f) => {
                if f.sync {
                    f.file.sync_data().map_err(Error::io("fdatasync", &f.path))?;
                }
                Staged::File(f)
            }
        };
        Ok(StagedSnapshot {
            place,
            len: self.len,
            crc,
        })
    }
}

impl Write for SnapshotSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.place {
            Place::Memory(v) => v.extend_from_slice(buf),
            Place::File(f) => {
                let at = (FILE_HEADER_LEN as u64)
                    .checked_add(self.len)
                    .ok_or_else(|| io::Error::other("snapshot too large"))?;
                f.file.write_all_at(buf, at)?;
            }
        }
        self.len += buf.len() as u64;
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A snapshot's complete data, staged but not yet the current snapshot: read it back
/// with [`StagedSnapshot::reader`], install it with [`crate::LogStore::install_snapshot`].
/// Dropped uninstalled, its temp file is removed.
#[derive(Debug)]
pub struct StagedSnapshot {
    place: Staged,
    len: u64,
    crc: u32,
}

#[derive(Debug)]
enum Staged {
    Memory(Bytes),
    File(TempFile),
}

impl StagedSnapshot {
    /// Staged data held in memory.
    pub fn from_bytes(data: Bytes) -> Self {
        StagedSnapshot {
            len: data.len() as u64,
            crc: crc32fast::hash(&data),
            place: Staged::Memory(data),
        }
    }

    /// The data's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data's CRC-32 (IEEE).
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Reads the data from the start. Reading a staging file back, the last read
    /// fails (`InvalidData`) if what the disk returns differs from what was written.
    pub fn reader(&self) -> Box<dyn Read + Send + '_> {
        match &self.place {
            Staged::Memory(b) => Box::new(io::Cursor::new(b.clone())),
            Staged::File(f) => Box::new(RegionReader {
                file: &*f.file,
                start: FILE_HEADER_LEN as u64,
                len: self.len,
                pos: 0,
                crc: self.crc,
                hasher: Some(crc32fast::Hasher::new()),
            }),
        }
    }

    /// The whole data in memory (for storages that keep snapshots whole).
    ///
    /// # Errors
    /// A failed read of the staging file.
    pub fn into_bytes(self) -> Result<Bytes, StorageError> {
        match &self.place {
            Staged::Memory(b) => Ok(b.clone()),
            Staged::File(f) => {
                let len = usize::try_from(self.len).map_err(|_| StorageError::other("snapshot too large"))?;
                let mut data = vec![0u8; len];
                f.file
                    .read_exact_at(&mut data, FILE_HEADER_LEN as u64)
                    .map_err(|e| StorageError::other(format!("read {}: {e}", f.path.display())))?;
                Ok(Bytes::from(data))
            }
        }
    }

    /// Makes the staged file the snapshot file for `meta` in its directory (format
    /// version 2): the description after the data, the header, fdatasync, rename,
    /// fsync the directory. Returns the file's name. Memory-staged data is written
    /// the same way.
    pub(crate) fn write_file(
        mut self,
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        meta: &SnapshotMeta,
        sync: bool,
    ) -> Result<String, Error> {
        if let Staged::Memory(data) = &self.place {
            let mut sink = SnapshotSink::file(vfs.clone(), dir, false)?;
            sink.write_all(data).map_err(Error::io("write", dir))?;
            self = sink
                .finish()
                .map_err(|e| Error::io("stage", dir)(io::Error::other(e)))?;
        }
        let Staged::File(f) = &mut self.place else {
            return Err(Error::io("stage", dir)(io::Error::other("snapshot not staged")));
        };
        let name = snapshot_name(meta.index, meta.term);
        let path = dir.join(&name);
        let encode = postcard::to_stdvec(meta).map_err(|e| Error::io("encode", &path)(io::Error::other(e)))?;
        let mut tail = Vec::with_capacity(encode.len() + RECORD_HEADER_LEN + LEN_CRC);
        push_record(&mut tail, &encode);
        tail.extend_from_slice(&self.len.to_le_bytes());
        tail.extend_from_slice(&self.crc.to_le_bytes());
        let io = |what| Error::io(what, &f.path);
        f.file
            .write_all_at(&tail, FILE_HEADER_LEN as u64 + self.len)
            .map_err(io("write"))?;
        let header = encode_file_header_version(FileKind::Snapshot, SNAPSHOT_FORMAT_VERSION, meta.index);
        f.file.write_all_at(&header, 0).map_err(io("write"))?;
        if sync {
            // The data was synced when staged (or is synced now, staged in memory).
            f.file.sync_data().map_err(io("fdatasync"))?;
        }
        f.vfs.rename(&f.path, &path).map_err(io("rename"))?;
        f.installed = true;
        if sync {
            f.vfs.sync_dir(&f.dir).map_err(Error::io("fsync", &f.dir))?;
        }
        Ok(name)
    }
}

/// Reads `len` bytes of a file from `start`, in order, checking them against `crc`
/// at the end.
struct RegionReader<'a> {
    file: &'a dyn VfsFile,
    start: u64,
    len: u64,
    pos: u64,
    crc: u32,
    /// `None` once the end was reached and checked.
    hasher: Option<crc32fast::Hasher>,
}

impl Read for RegionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            if let Some(h) = self.hasher.take() {
                if h.finalize() != self.crc {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "staged snapshot data fails its checksum",
                    ));
                }
            }
            return Ok(0);
        }
        self.file.read_exact_at(&mut buf[..n], self.start + self.pos)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.pos += n as u64;
        Ok(n)
    }
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
        Box::new(CheckedReader {
            region: self,
            pos: 0,
            hasher: crc32fast::Hasher::new(),
            checked: false,
        })
    }
}

/// Reads a snapshot file's data in order; the last read fails if the data does not
/// match its checksum, so a restore from a damaged file never completes.
struct CheckedReader {
    region: DataRegion,
    pos: u64,
    hasher: crc32fast::Hasher,
    checked: bool,
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &self.region;
        let n = (buf.len() as u64).min(r.len - self.pos) as usize;
        if n == 0 {
            if !self.checked && std::mem::take(&mut self.hasher).finalize() != r.crc {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: snapshot data fails its checksum", r.path.display()),
                ));
            }
            self.checked = true;
            return Ok(0);
        }
        r.file.read_exact_at(&mut buf[..n], r.start + self.pos)?;
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
