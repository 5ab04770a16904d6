//! A fault-injecting, in-memory file system that knows what is durable: a file's data
//! as of its last `sync_data`, a directory's names as of its last `sync_dir` (POSIX's
//! weakest promises). After every operation that changes anything it records what a
//! crash at that point would leave behind:
//!
//! - `process`: the process died; everything written is there (the page cache survives);
//! - `power`: the machine lost power; only what was synced is there;
//! - `torn-cut`: power loss while the disk was writing: each file with unsynced appended
//!   data keeps half of it;
//! - `torn-hole`: the same, but the disk wrote the appended pages out of order: all of
//!   the unsynced data is there except one zeroed sector.
//!
//! It can also fail every operation from the n-th on, to test what a failed write does.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use raft_storage::vfs::{DirLock, LockOutcome, OpenMode, Vfs, VfsFile};

/// The files a crash leaves: path to content.
pub type Image = BTreeMap<PathBuf, Vec<u8>>;

/// What a crash after operation `op` would leave.
#[derive(Clone, Debug)]
pub struct Crash {
    /// How many changing operations had completed.
    pub op: u64,
    /// `process`, `power`, `torn-cut` or `torn-hole`.
    pub kind: &'static str,
    /// The files.
    pub files: Image,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    dirs: HashSet<PathBuf>,
    locked: HashSet<PathBuf>,
    ops: u64,
    record: bool,
    crashes: Vec<Crash>,
    fail_from: Option<u64>,
}

/// The file system; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SimVfs(Arc<Mutex<State>>);

impl SimVfs {
    /// An empty file system.
    pub fn new() -> Self {
        SimVfs::default()
    }

    /// A file system holding `files`, all durable (as found after a reboot).
    pub fn from_image(files: &Image) -> Self {
        let vfs = SimVfs::new();
        {
            let mut s = vfs.state();
            for (path, data) in files {
                let ino = s.inodes.len();
                s.inodes.push(Inode {
                    data: data.clone(),
                    durable: data.clone(),
                });
                s.names.insert(path.clone(), ino);
                s.durable_names.insert(path.clone(), ino);
                if let Some(parent) = path.parent() {
                    s.dirs.insert(parent.to_owned());
                }
            }
        }
        vfs
    }

    /// Starts recording crash images after every changing operation.
    pub fn record_crashes(&self) {
        self.state().record = true;
    }

    /// The crash images recorded so far.
    pub fn take_crashes(&self) -> Vec<Crash> {
        std::mem::take(&mut self.state().crashes)
    }

    /// How many changing operations have completed.
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Makes every changing operation from the `n`-th on fail.
    pub fn fail_from(&self, n: u64) {
        self.state().fail_from = Some(n);
    }

    /// What a process crash would leave now.
    pub fn process_image(&self) -> Image {
        self.state().image_process()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a changing operation: counts it, fails it if asked, records the crash images.
    fn change<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut s = self.state();
        if s.fail_from.is_some_and(|n| s.ops + 1 >= n) {
            return Err(io::Error::other("injected failure"));
        }
        let r = f(&mut s)?;
        s.ops += 1;
        if s.record {
            let op = s.ops;
            let images = [
                ("process", s.image_process()),
                ("power", s.image_power(Torn::No)),
                ("torn-cut", s.image_power(Torn::Cut)),
                ("torn-hole", s.image_power(Torn::Hole)),
            ];
            for (kind, files) in images {
                s.crashes.push(Crash { op, kind, files });
            }
        }
        Ok(r)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Torn {
    No,
    Cut,
    Hole,
}

impl State {
    fn image_process(&self) -> Image {
        self.names
            .iter()
            .map(|(p, &i)| (p.clone(), self.inodes[i].data.clone()))
            .collect()
    }

    fn image_power(&self, torn: Torn) -> Image {
        let mut image = Image::new();
        for (p, &i) in &self.durable_names {
            let Inode { data, durable } = &self.inodes[i];
            let mut content = durable.clone();
            if data.len() > durable.len() && data.starts_with(durable) {
                match torn {
                    Torn::No => {}
                    Torn::Cut => content = data[..durable.len() + (data.len() - durable.len()) / 2].to_vec(),
                    Torn::Hole => {
                        let start = (durable.len() as u64).div_ceil(512) * 512;
                        if start + 512 <= data.len() as u64 {
                            content = data.clone();
                            content[start as usize..start as usize + 512].fill(0);
                        }
                    }
                }
            }
            image.insert(p.clone(), content);
        }
        image
    }

    fn inode_of(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

impl Vfs for SimVfs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state().dirs.insert(dir.to_owned());
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state();
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.state().dirs.contains(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let ino = match mode {
            OpenMode::Read | OpenMode::ReadWrite => self.state().inode_of(path)?,
            OpenMode::CreateNew | OpenMode::CreateTruncate => self.change(|s| {
                if let Some(&ino) = s.names.get(path) {
                    if mode == OpenMode::CreateNew {
                        return Err(io::ErrorKind::AlreadyExists.into());
                    }
                    s.inodes[ino].data.clear();
                    return Ok(ino);
                }
                s.inodes.push(Inode::default());
                let ino = s.inodes.len() - 1;
                s.names.insert(path.to_owned(), ino);
                Ok(ino)
            })?,
        };
        Ok(Box::new(SimFile { vfs: self.clone(), ino }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.change(|s| {
            let ino = s.inode_of(from)?;
            s.names.remove(from);
            s.names.insert(to.to_owned(), ino);
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.change(|s| {
            s.inode_of(path)?;
            s.names.remove(path);
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.change(|s| {
            s.durable_names.retain(|p, _| p.parent() != Some(dir));
            let names: Vec<_> = s
                .names
                .iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, &i)| (p.clone(), i))
                .collect();
            s.durable_names.extend(names);
            Ok(())
        })
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<LockOutcome> {
        let mut s = self.state();
        if !s.locked.insert(dir.to_owned()) {
            return Ok(LockOutcome::Held {
                holder: "locked by another SimVfs user".into(),
            });
        }
        Ok(LockOutcome::Acquired(DirLock::new(LockGuard {
            vfs: self.clone(),
            dir: dir.to_owned(),
        })))
    }
}

struct LockGuard {
    vfs: SimVfs,
    dir: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.vfs.state().locked.remove(&self.dir);
    }
}

#[derive(Debug)]
struct SimFile {
    vfs: SimVfs,
    ino: usize,
}

impl VfsFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.vfs.state().inodes[self.ino].data.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let s = self.vfs.state();
        let data = &s.inodes[self.ino].data;
        let start = offset as usize;
        let end = start + buf.len();
        if end > data.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.vfs.change(|s| {
            let data = &mut s.inodes[self.ino].data;
            let end = offset as usize + buf.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[offset as usize..end].copy_from_slice(buf);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.vfs.change(|s| {
            s.inodes[self.ino].data.resize(len as usize, 0);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.vfs.change(|s| {
            let inode = &mut s.inodes[self.ino];
            inode.durable = inode.data.clone();
            Ok(())
        })
    }
}
