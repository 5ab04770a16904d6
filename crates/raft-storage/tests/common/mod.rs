//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod craft;
pub mod disk_log;
pub mod model;
pub mod multi;
pub mod multi_disk;
pub mod sim_vfs;
pub mod steps;

use std::path::{Path, PathBuf};

use raft_storage::{Durability, FileStorage, Options};

/// Small segments and a small cache, so that tests cross many segment boundaries and
/// read from disk.
pub fn small_options() -> Options {
    Options::default().segment_size(512).cache_bytes(300)
}

/// Opens `dir`, panicking with the error.
pub fn open(dir: &Path, options: &Options) -> FileStorage {
    FileStorage::open(dir, options.clone()).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Closes a storage and opens its directory again.
pub fn reopen(store: FileStorage) -> FileStorage {
    let dir: PathBuf = store.dir().to_owned();
    let options = store.options().clone();
    drop(store);
    open(&dir, &options)
}

/// Options without fsync, for tests that do not pull the plug.
pub fn no_fsync(options: Options) -> Options {
    options.durability(Durability::UnsafeNoFsyncForTests)
}

/// The segment files of a directory, in log order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

/// Copies every file of `from` into a new temp dir (the LOCK file too, as a crash would leave it).
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}
