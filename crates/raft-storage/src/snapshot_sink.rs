//! Snapshot data as a stream, so that no snapshot is ever held whole in memory.
//!
//! A [`SnapshotSink`] is where a snapshot's data goes as it is made (by a state
//! machine) or received (chunk by chunk from a leader): a temp file in the data
//! directory, or memory for a storage without files. [`SnapshotSink::finish`] gives a
//! [`StagedSnapshot`], which can be read back (for the state machine to check and
//! restore it) and is then installed by [`crate::LogStore::install_snapshot`]: the
//! staging file, already holding the data where a snapshot file has it, becomes the
//! snapshot file (its layout is in `snapshot_file`).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use raft_core::{SnapshotMeta, StorageError};

use crate::error::Error;
use crate::format::FILE_HEADER_LEN;
use crate::names::{snapshot_name, STAGING_PREFIX, TMP_SUFFIX};
use crate::snapshot_file::{self, CheckedReader};
use crate::vfs::{OpenMode, Vfs, VfsFile};

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
            Staged::File(f) => Box::new(CheckedReader::new(
                &*f.file,
                FILE_HEADER_LEN as u64,
                self.len,
                self.crc,
                "staged snapshot data fails its checksum".into(),
            )),
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
        self,
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        meta: &SnapshotMeta,
        sync: bool,
    ) -> Result<String, Error> {
        let name = snapshot_name(meta.index, meta.term);
        self.write_file_named(vfs, dir, name, meta, sync)
    }

    /// [`StagedSnapshot::write_file`] under the file name `name`.
    pub(crate) fn write_file_named(
        mut self,
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        name: String,
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
        let path = dir.join(&name);
        let encode = postcard::to_stdvec(meta).map_err(|e| Error::io("encode", &path)(io::Error::other(e)))?;
        let tail = snapshot_file::trailer(&encode, self.len, self.crc);
        let io = |what| Error::io(what, &f.path);
        f.file
            .write_all_at(&tail, FILE_HEADER_LEN as u64 + self.len)
            .map_err(io("write"))?;
        f.file
            .write_all_at(&snapshot_file::header(meta.index), 0)
            .map_err(io("write"))?;
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
