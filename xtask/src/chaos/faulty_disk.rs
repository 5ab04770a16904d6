//! The fault-injecting file system a chaos node's storage runs on ([`FaultyVfs`]):
//! the real one, with the disk faults the driver arms through `admin_diskFault`
//! ([`DiskFaults`]: fsyncs that fail with EIO, writes that fail half-way with ENOSPC,
//! fsyncs that stall) injected into fsyncs and writes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use easyraft::storage::vfs::{LockOutcome, OpenMode, StdVfs, Vfs, VfsFile};

/// A disk fault armed on a node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Armed {
    /// Every fsync (file or directory) fails with EIO, until the process exits: a
    /// dying disk (and after a failed fsync nothing in the page cache can be trusted).
    Eio,
    /// Every write fails with ENOSPC after writing half its bytes, until the process
    /// exits: a full disk.
    Enospc,
    /// Every fsync takes `delay` longer, until `until`.
    Slow { delay: Duration, until: Instant },
}

/// The faults armed on this node's file system.
#[derive(Debug, Default)]
pub struct DiskFaults(Mutex<Option<Armed>>);

impl DiskFaults {
    fn get(&self) -> Option<Armed> {
        let mut a = self.0.lock().ok()?;
        if let Some(Armed::Slow { until, .. }) = *a {
            if Instant::now() >= until {
                *a = None;
            }
        }
        *a
    }

    /// Arms `armed` (replacing what was armed).
    pub(crate) fn arm(&self, armed: Armed) {
        if let Ok(mut a) = self.0.lock() {
            *a = Some(armed);
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        match self.get() {
            Some(Armed::Eio) => Err(std::io::Error::from_raw_os_error(EIO)),
            Some(Armed::Slow { delay, .. }) => {
                std::thread::sleep(delay);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// `EIO` and `ENOSPC` on Linux (and every Unix this runs on).
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// The real file system, with the faults of [`DiskFaults`] injected into fsyncs and
/// writes; every other operation is passed through.
#[derive(Debug)]
pub struct FaultyVfs {
    faults: Arc<DiskFaults>,
}

impl FaultyVfs {
    /// The real file system with `faults` injected.
    pub fn new(faults: Arc<DiskFaults>) -> Self {
        FaultyVfs { faults }
    }
}

impl Vfs for FaultyVfs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        StdVfs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        StdVfs.is_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(FaultyFile {
            inner: StdVfs.open(path, mode)?,
            faults: self.faults.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        StdVfs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        StdVfs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.faults.sync()?;
        StdVfs.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> std::io::Result<LockOutcome> {
        StdVfs.lock_dir(dir)
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn VfsFile>,
    faults: Arc<DiskFaults>,
}

impl VfsFile for FaultyFile {
    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if self.faults.get() == Some(Armed::Enospc) {
            // A full disk takes what fits, then refuses the rest.
            self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.faults.sync()?;
        self.inner.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, faults: &Arc<DiskFaults>) -> Box<dyn VfsFile> {
        let vfs = FaultyVfs { faults: faults.clone() };
        vfs.open(&dir.join("f"), OpenMode::CreateTruncate).expect("open")
    }

    #[test]
    fn armed_faults_fail_fsyncs_and_writes_as_a_disk_would() {
        let dir = tempfile::tempdir().expect("tempdir");
        let faults = Arc::new(DiskFaults::default());
        let f = file(dir.path(), &faults);
        f.write_all_at(b"12345678", 0).expect("write");
        f.sync_data().expect("sync");

        faults.arm(Armed::Enospc);
        let e = f.write_all_at(b"abcdefgh", 8).expect_err("a full disk");
        assert_eq!(e.raw_os_error(), Some(ENOSPC));
        assert_eq!(f.size().expect("size"), 12, "half the bytes were written");

        faults.arm(Armed::Eio);
        assert_eq!(f.sync_data().expect_err("EIO").raw_os_error(), Some(EIO));
        let vfs = FaultyVfs { faults: faults.clone() };
        assert_eq!(vfs.sync_dir(dir.path()).expect_err("EIO").raw_os_error(), Some(EIO));

        let delay = Duration::from_millis(150);
        faults.arm(Armed::Slow {
            delay,
            until: Instant::now() + Duration::from_millis(400),
        });
        let t = Instant::now();
        f.sync_data().expect("a slow sync still syncs");
        assert!(t.elapsed() >= delay);
        std::thread::sleep(Duration::from_millis(400));
        let t = Instant::now();
        f.sync_data().expect("sync");
        assert!(t.elapsed() < delay, "the slow window is over");
    }
}
