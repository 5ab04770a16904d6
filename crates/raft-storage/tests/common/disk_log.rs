//! A log written to a real directory one entry at a time, remembering where each
//! entry's record ends, so tests can damage the files at known places.

use std::path::PathBuf;

use raft_core::Entry;
use raft_storage::{LogStore, Options};

use super::model::entries;

/// A written log and where its records are.
pub struct DiskLog {
    pub dir: tempfile::TempDir,
    pub options: Options,
    pub entries: Vec<Entry>,
    /// For each entry: its segment file, and where its record starts and ends there.
    pub records: Vec<(PathBuf, u64, u64)>,
}

/// Writes entries 1..=n (one append each) into segments of `segment_size` bytes.
pub fn write_log(n: u64, segment_size: u64) -> DiskLog {
    let dir = tempfile::tempdir().unwrap();
    let options = super::no_fsync(Options::default().segment_size(segment_size).cache_bytes(0));
    let mut store = super::open(dir.path(), &options);
    let all = entries(1..n + 1, 1);
    let mut records = Vec::new();
    for e in &all {
        store.append(std::slice::from_ref(e)).unwrap();
        let last = super::segment_files(dir.path()).pop().unwrap();
        let end = std::fs::metadata(&last).unwrap().len();
        let start = match records.last() {
            Some((path, _, prev_end)) if *path == last => *prev_end,
            _ => 24, // the file header
        };
        records.push((last, start, end));
    }
    DiskLog {
        dir,
        options,
        entries: all,
        records,
    }
}
