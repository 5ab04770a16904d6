//! The storage contract suite, on raft-core's MemStorage and on FileStorage (with
//! fsync, as in production, and with segments small enough that every check crosses
//! segment boundaries and reads from disk).

mod common;

use std::cell::RefCell;

use raft_core::MemStorage;
use raft_storage::{contract, FileStorage, Options};

#[test]
fn mem_storage_passes_the_contract() {
    contract::run_all(MemStorage::default);
}

fn file_suite(options: Options) {
    let dirs = RefCell::new(Vec::new());
    let make = || {
        let dir = tempfile::tempdir().unwrap();
        let store = common::open(dir.path(), &options);
        dirs.borrow_mut().push(dir);
        store
    };
    contract::run_all(make);
    contract::run_reopen_checks(make, common::reopen);
}

#[test]
fn file_storage_passes_the_contract_with_small_segments_and_cache() {
    file_suite(common::small_options());
}

#[test]
fn file_storage_passes_the_contract_with_default_options() {
    file_suite(Options::default());
}

#[test]
fn file_storage_passes_the_contract_without_a_cache() {
    file_suite(Options::default().segment_size(4096).cache_bytes(0));
}

#[test]
fn two_storages_cannot_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = common::open(dir.path(), &Options::default());
    let err = FileStorage::open(dir.path(), Options::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, raft_storage::Error::Locked { .. }), "{err:?}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
    drop(first);
    common::open(dir.path(), &Options::default());
}
