//! The file-system seam [`crate::FileStorage`] does all its IO through.
//!
//! Production code uses [`StdVfs`] (the default). The seam exists so that tests can
//! substitute a file system that records what is durable at every write and fsync and
//! then "crashes", which is how this crate's crash tests reach every fsync point; users
//! can do the same for their own fault injection.
//!
//! The operations are the few a write-ahead log needs, with POSIX semantics: a write
//! is durable after [`VfsFile::sync_data`]; a created, renamed or removed name is
//! durable after [`Vfs::sync_dir`] on its directory.

use std::any::Any;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet.
    CreateNew,
    /// Read and write; created if missing, emptied if present.
    CreateTruncate,
}

/// A held directory lock; dropping it releases the lock.
pub struct DirLock(#[allow(dead_code)] Box<dyn Any + Send + Sync>);

impl DirLock {
    /// Wraps whatever keeps the lock held (a file handle, a guard).
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        DirLock(Box::new(guard))
    }
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirLock")
    }
}

/// The outcome of [`Vfs::lock_dir`].
#[derive(Debug)]
pub enum LockOutcome {
    /// The lock is ours until the [`DirLock`] is dropped.
    Acquired(DirLock),
    /// Someone else holds it; `holder` describes them (e.g. `pid 4242`).
    Held {
        /// Who holds the lock, as far as can be told.
        holder: String,
    },
}

/// A file system: the directory operations a log needs.
pub trait Vfs: fmt::Debug + Send + Sync {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` is a directory (`false` if it does not exist).
    fn is_dir(&self, path: &Path) -> bool;
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>>;
    /// Atomically replaces `to` by `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of `dir` without waiting.
    fn lock_dir(&self, dir: &Path) -> io::Result<LockOutcome>;
}

/// An open file, read and written at explicit offsets.
pub trait VfsFile: fmt::Debug + Send + Sync {
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Cuts (or extends with zeros) the file to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the written data (and the length) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
}

/// The real file system, through `std::fs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdVfs;

/// The name of the lock file in a data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

impl Vfs for StdVfs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut o = OpenOptions::new();
        o.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                o.write(true);
            }
            OpenMode::CreateNew => {
                o.write(true).create_new(true);
            }
            OpenMode::CreateTruncate => {
                o.write(true).create(true).truncate(true);
            }
        }
        Ok(Box::new(StdFile(o.open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Directory handles cannot be synced this way elsewhere; renames are
            // durable on return on Windows' NTFS.
            let _ = dir;
            Ok(())
        }
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<LockOutcome> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if !try_lock(&file)? {
            let mut holder = String::new();
            // Best effort: the holder wrote its pid after locking.
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "held by an unknown process".to_owned(),
                h => format!("locked by {h}"),
            };
            return Ok(LockOutcome::Held { holder });
        }
        file.set_len(0)?;
        write!(file, "pid {}", std::process::id())?;
        Ok(LockOutcome::Acquired(DirLock::new(file)))
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: a lock per open file, so a second open in the same
/// process is refused too; the kernel drops it when the process dies.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}

#[derive(Debug)]
struct StdFile(File);

impl VfsFile for StdFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
    }

    #[cfg(unix)]
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.0.seek_read(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    #[cfg(windows)]
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            let n = self.0.seek_write(buf, offset)?;
            buf = &buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}
