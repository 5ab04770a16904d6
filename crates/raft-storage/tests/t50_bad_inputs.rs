//! What an operator may point the storage at by mistake, and the missing pieces a
//! damaged directory can have: each one a clear, typed error naming the file.

mod common;

use std::path::Path;

use raft_core::{HardState, Storage};
use raft_storage::{contract, Error, FileStorage, LogStore, Options};

fn open(dir: &Path) -> Result<FileStorage, Error> {
    FileStorage::open(dir, common::no_fsync(common::small_options()))
}

/// A directory holding a log of 1..=200 in several segments, a snapshot at 10 and commit 150.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path()).unwrap();
    store.append(&contract::entries(1..201, 1)).unwrap();
    store.save_snapshot(&contract::snapshot(10, 1, &["a"])).unwrap();
    store
        .set_hard_state(&HardState {
            term: 1,
            vote: Some("a".into()),
            commit: 150,
        })
        .unwrap();
    dir
}

#[test]
fn an_empty_or_missing_directory_is_a_fresh_storage() {
    let dir = tempfile::tempdir().unwrap();
    let membership = raft_core::Membership::with_voters(["n1", "n2", "n3"]);
    let options = Options::default().initial_membership(membership.clone());
    for path in [dir.path().to_owned(), dir.path().join("not/yet/there")] {
        let store = FileStorage::open(&path, options.clone()).unwrap();
        assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (1, 0));
        let state = store.initial_state().unwrap();
        assert_eq!(
            (state.hard_state, state.membership),
            (HardState::default(), membership.clone())
        );
    }
}

#[test]
fn a_directory_of_unrelated_files_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("photo.jpg"), [0xff, 0xd8]).unwrap();
    let err = open(dir.path()).unwrap_err();
    let Error::ForeignFile { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(path.ends_with("notes.txt") || path.ends_with("photo.jpg"), "{err}");
    assert!(err.to_string().contains("not an easyraft storage file"), "{err}");
    // Nothing was written into it, not even the lock file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn a_subdirectory_or_a_stray_file_next_to_a_log_is_refused() {
    let dir = populated();
    std::fs::create_dir(dir.path().join("backup")).unwrap();
    assert!(matches!(open(dir.path()), Err(Error::ForeignFile { path, .. }) if path.ends_with("backup")));
    std::fs::remove_dir(dir.path().join("backup")).unwrap();
    std::fs::write(dir.path().join("00000000000000000001.wal.bak"), "x").unwrap();
    assert!(matches!(open(dir.path()), Err(Error::ForeignFile { .. })));
}

#[test]
fn a_file_of_a_newer_format_version_is_refused_as_such() {
    for victim in ["state", "segment", "snapshot"] {
        let dir = populated();
        let path = match victim {
            "state" => dir.path().join("state"),
            "segment" => common::segment_files(dir.path()).pop().unwrap(),
            _ => std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|x| x == "snap"))
                .unwrap(),
        };
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        match open(dir.path()) {
            Err(Error::NewerFormat {
                path: p,
                version: 7,
                supported: 1,
            }) => assert_eq!(p, path),
            other => panic!("{victim}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_segment_in_the_middle_is_an_error_naming_the_next_one() {
    let dir = populated();
    let segments = common::segment_files(dir.path());
    assert!(segments.len() >= 3);
    std::fs::remove_file(&segments[1]).unwrap();
    match open(dir.path()) {
        Err(Error::MissingSegment { path, .. }) => assert_eq!(path, segments[2]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_first_segment_is_a_hole_after_the_snapshot() {
    let dir = populated();
    std::fs::remove_file(&common::segment_files(dir.path())[0]).unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(Error::MissingSegment { expected: 11, .. })
    ));
}

#[test]
fn a_hard_state_beyond_the_log_is_an_error() {
    let dir = populated();
    // Lose the segments holding committed entries (from the end: no hole).
    for seg in common::segment_files(dir.path()).into_iter().rev() {
        let first: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        if first >= 100 {
            std::fs::remove_file(seg).unwrap();
        }
    }
    let err = open(dir.path()).unwrap_err();
    let Error::HardStateBeyondLog {
        path,
        commit: 150,
        last_index,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(path.ends_with("state") && *last_index < 150, "{err}");
}

#[test]
fn a_missing_state_file_next_to_a_log_is_an_error() {
    let dir = populated();
    std::fs::remove_file(dir.path().join("state")).unwrap();
    assert!(matches!(open(dir.path()), Err(Error::MissingState { .. })));
}

#[test]
fn a_missing_snapshot_file_is_an_error() {
    let dir = populated();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snap") {
            std::fs::remove_file(p).unwrap();
        }
    }
    assert!(matches!(
        open(dir.path()),
        Err(Error::MissingSnapshot { index: 10, term: 1, .. })
    ));
}

#[test]
fn leftovers_of_interrupted_writes_are_cleaned_up() {
    let dir = populated();
    std::fs::write(dir.path().join("state.tmp"), "half a state").unwrap();
    let orphan = dir.path().join(format!("snapshot-{:020}-{:020}.snap", 35, 1));
    std::fs::write(&orphan, "a snapshot whose state file never landed").unwrap();
    let store = open(dir.path()).unwrap();
    assert_eq!(store.last_index().unwrap(), 200);
    assert!(!dir.path().join("state.tmp").exists() && !orphan.exists());
}

#[test]
fn a_file_where_the_directory_should_be_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "").unwrap();
    let err = open(&file).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if *path == file), "{err:?}");
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileStorage::open(dir.path(), Options::default().segment_size(10)).unwrap_err();
    assert!(matches!(err, Error::InvalidOptions(_)), "{err}");
}

#[test]
fn entries_that_do_not_follow_each_other_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path()).unwrap();
    let mut es = contract::entries(1..5, 1);
    es.remove(2);
    let err = store.append(&es).unwrap_err();
    assert!(
        matches!(
            Error::from_storage(&err),
            Some(Error::NotConsecutive { expected: 3, found: 4 })
        ),
        "{err}"
    );
    assert!(!store.is_poisoned());
    assert_eq!(store.last_index().unwrap(), 0);
}
