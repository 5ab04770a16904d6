//! Snapshot data staged in the data directory: a staging file that a crash left
//! behind is removed on open, one that is abandoned is removed at once, and neither
//! ever becomes the snapshot.

mod common;

use std::io::Write;

use raft_core::Storage;
use raft_storage::{contract, LogStore};

fn staging_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("snapshot-staging-"))
        .collect()
}

#[test]
fn a_staging_file_left_by_a_crash_is_removed_on_open_and_an_abandoned_one_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = common::small_options();
    let mut store = common::open(dir.path(), &options);
    store.append(&contract::entries(1..4, 1)).unwrap();

    let mut sink = store.snapshot_sink().unwrap();
    sink.write_all(&[7u8; 10_000]).unwrap();
    assert_eq!(staging_files(dir.path()).len(), 1, "staged in the data directory");
    drop(sink);
    assert!(staging_files(dir.path()).is_empty(), "an abandoned sink leaves nothing");

    // A crash in the middle of staging: the file stays, the process is gone.
    let mut sink = store.snapshot_sink().unwrap();
    sink.write_all(&[9u8; 10_000]).unwrap();
    std::mem::forget(sink);
    assert_eq!(staging_files(dir.path()).len(), 1);
    drop(store);
    let store = common::open(dir.path(), &options);
    assert!(staging_files(dir.path()).is_empty(), "recovery removes it");
    assert_eq!(
        store.snapshot_info().unwrap().meta.index,
        0,
        "and it never became a snapshot"
    );
    assert_eq!(store.last_index().unwrap(), 3);
}
