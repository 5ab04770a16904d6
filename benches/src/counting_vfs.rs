//! A [`Vfs`] over the real file system that counts every `fdatasync` and directory
//! fsync, so the benches can report fsyncs per committed entry.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raft_storage::vfs::{LockOutcome, OpenMode, StdVfs, Vfs, VfsFile};

/// The real file system, counting every `fdatasync` and directory fsync.
#[derive(Debug, Default)]
pub struct CountingVfs {
    syncs: Arc<AtomicU64>,
}

impl CountingVfs {
    /// Counts into `syncs` (shared with the caller, who reads it).
    pub fn new(syncs: Arc<AtomicU64>) -> Self {
        CountingVfs { syncs }
    }
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn VfsFile>,
    syncs: Arc<AtomicU64>,
}

impl Vfs for CountingVfs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdVfs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        StdVfs.is_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let inner = StdVfs.open(path, mode)?;
        Ok(Box::new(CountingFile {
            inner,
            syncs: self.syncs.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdVfs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdVfs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        StdVfs.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<LockOutcome> {
        StdVfs.lock_dir(dir)
    }
}

impl VfsFile for CountingFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_data()
    }
}
