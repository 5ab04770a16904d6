//! The storage contract suite on GroupLog: every check runs on a new group of one
//! shared MultiLog, so the groups' records interleave in its segments (small ones, so
//! that checks cross segments, checkpoints and segment deletion), and the reopen checks
//! reopen the whole multi-log with every other group in it.

mod common;

use std::cell::RefCell;

use common::multi::{group, open};
use raft_storage::{contract, GroupLog, MultiLog, Options};

fn suite(options: Options) {
    let dir = tempfile::tempdir().unwrap();
    let log = RefCell::new(Some(open(dir.path(), &options)));
    let next = RefCell::new(1u64);
    let make = || {
        let id = next.replace_with(|n| *n + 1);
        group(log.borrow().as_ref().unwrap(), id)
    };
    contract::run_all(make);
    let reopen = |s: GroupLog| {
        let id = s.id();
        drop(s);
        drop(log.borrow_mut().take());
        let reopened = open(dir.path(), &options);
        let g = group(&reopened, id);
        *log.borrow_mut() = Some(reopened);
        g
    };
    contract::run_reopen_checks(make, reopen);
    // Every group the checks made is still there, each with its own state.
    let log = log.borrow_mut().take().unwrap();
    assert_eq!(log.groups().len() as u64, *next.borrow() - 1);
}

#[test]
fn group_log_passes_the_contract_with_small_segments() {
    suite(Options::default().segment_size(600));
}

#[test]
fn group_log_passes_the_contract_with_default_options() {
    suite(Options::default());
}

#[test]
fn two_multi_logs_cannot_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), &Options::default());
    let err = MultiLog::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, raft_storage::Error::Locked { .. }), "{err:?}");
    drop(first);
    open(dir.path(), &Options::default());
}

#[test]
fn a_file_storage_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::open(dir.path(), &Options::default()));
    let before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let err = MultiLog::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, raft_storage::Error::ForeignFile { .. }), "{err:?}");
    let after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}
