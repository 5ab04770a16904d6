//! A multi-log written to a real directory one entry at a time, groups taking turns,
//! remembering where each entry's record is, so tests can damage the files there.

use std::path::PathBuf;

use raft_core::Entry;
use raft_storage::{LogStore, Options};

use super::model::entry;

/// A written multi-log and where its entry records are.
pub struct MultiDiskLog {
    pub dir: tempfile::TempDir,
    pub options: Options,
    pub groups: u64,
    /// In write order: the group, its entry, the segment file, the record's start and end.
    pub records: Vec<(u64, Entry, PathBuf, u64, u64)>,
}

impl MultiDiskLog {
    /// Each group's entries among the first `n` records.
    pub fn entries_of(&self, g: u64, keep: impl Fn(usize) -> bool) -> Vec<Entry> {
        self.records
            .iter()
            .enumerate()
            .filter(|(k, r)| r.0 == g && keep(*k))
            .map(|(_, r)| r.1.clone())
            .collect()
    }

    /// The newest segment file.
    pub fn last_segment(&self) -> PathBuf {
        self.records.last().unwrap().2.clone()
    }
}

/// The multi-log segment files of a directory, in order.
pub fn segments(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mlog"))
        .collect();
    files.sort();
    files
}

/// `groups` groups append `per_group` entries each, one at a time in turns, into
/// segments of `segment_size` bytes.
pub fn write_multi_log(groups: u64, per_group: u64, segment_size: u64) -> MultiDiskLog {
    let dir = tempfile::tempdir().unwrap();
    let options = super::no_fsync(Options::default().segment_size(segment_size));
    let log = super::multi::open(dir.path(), &options);
    let mut handles: Vec<_> = (0..groups).map(|g| super::multi::group(&log, g)).collect();
    log.sync().unwrap();
    let mut records = Vec::new();
    for index in 1..=per_group {
        for g in 0..groups {
            let e = entry(index, 1);
            handles[g as usize].append(std::slice::from_ref(&e)).unwrap();
            let last = segments(dir.path()).pop().unwrap();
            let end = std::fs::metadata(&last).unwrap().len();
            let len = 12 + postcard::to_stdvec(&(0u32, g, &e)).unwrap().len() as u64;
            records.push((g, e, last, end - len, end));
        }
    }
    MultiDiskLog {
        dir,
        options,
        groups,
        records,
    }
}
