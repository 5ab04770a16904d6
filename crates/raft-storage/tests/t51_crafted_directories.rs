//! Data directories no `FileStorage` writes, made by hand: indexes at or near
//! `u64::MAX`, a segment named 0, terms that go down. Each must be refused on open
//! with [`Error::Corrupt`] naming the file and the offset (never a panic, never a
//! wrapped index), and the write side must refuse to write what open would refuse.

mod common;

use std::path::{Path, PathBuf};

use common::craft::{self, State};
use raft_core::{Entry, EntryPayload, HardState, Membership, SnapshotMeta, Storage, MAX_INDEX, MAX_SNAPSHOT_INDEX};
use raft_storage::{contract, Corruption, Error, FileStorage, LogStore, Options};

fn options() -> Options {
    common::no_fsync(common::small_options())
}

fn open(dir: &Path) -> Result<FileStorage, Error> {
    FileStorage::open(dir, options())
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(format!("{index}@{term}").into()),
    }
}

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        membership: Membership::with_voters(["a"]),
    }
}

/// A directory whose state names a snapshot at `index` of `term` (with its file) and
/// commit `commit`.
fn with_snapshot(index: u64, term: u64, commit: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = State {
        hard_state: HardState {
            term: term.max(1),
            vote: None,
            commit,
        },
        snapshot: meta(index, term),
        snapshot_file: true,
    };
    let path = craft::write_state(dir.path(), &state);
    craft::write_snapshot(dir.path(), &state.snapshot, b"data");
    (dir, path)
}

/// A directory with a fresh state file (no snapshot, commit 0).
fn fresh() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).unwrap());
    dir
}

/// Opens `dir`, which must fail with `Corrupt` at `path`/`offset`; returns the kind.
fn corrupt_at(dir: &Path, path: &Path, offset: u64) -> Corruption {
    match open(dir) {
        Err(Error::Corrupt {
            path: p,
            offset: o,
            kind,
        }) => {
            let err = Error::Corrupt {
                path: p.clone(),
                offset: o,
                kind: kind.clone(),
            };
            assert_eq!((p.as_path(), o), (path, offset), "{err}");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("backup"), "the message says what to do: {message}");
            kind
        }
        Err(e) => panic!("want Corrupt at {}:{offset}, got {e}", path.display()),
        Ok(s) => panic!(
            "want Corrupt at {}:{offset}, but it opened: first {} last {}",
            path.display(),
            s.first_index().unwrap(),
            s.last_index().unwrap()
        ),
    }
}

#[test]
fn a_snapshot_at_u64_max_is_refused_naming_the_state_file() {
    // Old code: "attempt to add with overflow" (recovery.rs, `snap.index + 1`).
    let (dir, state) = with_snapshot(u64::MAX, 1, u64::MAX);
    let kind = corrupt_at(dir.path(), &state, 24);
    assert_eq!(
        kind,
        Corruption::ImpossibleSnapshot {
            index: u64::MAX,
            term: 1
        }
    );
}

#[test]
fn a_snapshot_at_u64_max_minus_one_is_refused_naming_the_state_file() {
    // Old code: opened with last index u64::MAX - 1, and the next append overflowed.
    for index in [u64::MAX - 1, MAX_SNAPSHOT_INDEX + 1] {
        let (dir, state) = with_snapshot(index, 1, index);
        let kind = corrupt_at(dir.path(), &state, 24);
        assert_eq!(kind, Corruption::ImpossibleSnapshot { index, term: 1 });
    }
}

#[test]
fn a_snapshot_at_the_index_bound_opens_and_takes_appends() {
    let (dir, _) = with_snapshot(MAX_SNAPSHOT_INDEX, 4, MAX_SNAPSHOT_INDEX);
    let mut store = open(dir.path()).unwrap();
    assert_eq!(store.last_index().unwrap(), MAX_SNAPSHOT_INDEX);
    store.append(&[entry(MAX_SNAPSHOT_INDEX + 1, 4)]).unwrap();
    let store = common::reopen(store);
    assert_eq!(store.last_index().unwrap(), MAX_SNAPSHOT_INDEX + 1);
    assert_eq!(store.term(MAX_SNAPSHOT_INDEX + 1).unwrap(), 4);
}

#[test]
fn a_snapshot_of_term_zero_is_refused() {
    // Old code: opened, with term(5) = 0, a term no entry has.
    let (dir, state) = with_snapshot(5, 0, 5);
    let kind = corrupt_at(dir.path(), &state, 24);
    assert_eq!(kind, Corruption::ImpossibleSnapshot { index: 5, term: 0 });
}

#[test]
fn an_empty_segment_named_zero_is_refused() {
    // Old code: "attempt to subtract with overflow" (recovery.rs, `next_index() - 1`).
    let dir = fresh();
    let (seg, _) = craft::write_segment(dir.path(), 0, &[]);
    assert_eq!(
        corrupt_at(dir.path(), &seg, 0),
        Corruption::SegmentIndexOutOfRange { first: 0 }
    );
}

#[test]
fn a_segment_named_u64_max_is_refused() {
    // Old code: "attempt to add with overflow" (terms.rs, `index + 1`).
    for first in [u64::MAX, MAX_INDEX + 1] {
        let dir = fresh();
        let (seg, _) = craft::write_segment(dir.path(), first, &[entry(first, 1)]);
        assert_eq!(
            corrupt_at(dir.path(), &seg, 0),
            Corruption::SegmentIndexOutOfRange { first }
        );
    }
}

#[test]
fn entries_whose_terms_go_down_are_refused_within_a_segment_and_across_segments() {
    // Old code: opened, and term(3) = 1 after term(2) = 2.
    let dir = fresh();
    let (seg, offsets) = craft::write_segment(dir.path(), 1, &[entry(1, 2), entry(2, 2), entry(3, 1)]);
    assert_eq!(
        corrupt_at(dir.path(), &seg, offsets[2]),
        Corruption::TermGoesDown {
            index: 3,
            term: 1,
            previous: 2
        }
    );

    let dir = fresh();
    craft::write_segment(dir.path(), 1, &[entry(1, 2), entry(2, 3)]);
    let (seg, _) = craft::write_segment(dir.path(), 3, &[entry(3, 2), entry(4, 2)]);
    assert_eq!(
        corrupt_at(dir.path(), &seg, 24),
        Corruption::TermGoesDown {
            index: 3,
            term: 2,
            previous: 3
        }
    );
}

#[test]
fn an_entry_of_term_zero_is_refused() {
    // Old code: opened, with an entry of a term before any leader.
    let dir = fresh();
    let (seg, _) = craft::write_segment(dir.path(), 1, &[entry(1, 0)]);
    assert_eq!(corrupt_at(dir.path(), &seg, 24), Corruption::ZeroTerm { index: 1 });
}

#[test]
fn a_log_after_the_snapshot_with_a_lower_term_than_the_snapshot_is_refused() {
    // Old code: opened, with term(6) = 2 after the snapshot's term(5) = 3.
    let (dir, _) = with_snapshot(5, 3, 5);
    let (seg, _) = craft::write_segment(dir.path(), 6, &[entry(6, 2)]);
    assert_eq!(
        corrupt_at(dir.path(), &seg, 24),
        Corruption::TermGoesDown {
            index: 6,
            term: 2,
            previous: 3
        }
    );
}

#[test]
fn the_write_side_refuses_what_open_would_refuse_and_stays_writable() {
    // Old code: overflow in `append` (`w[0].index + 1`) and `save_snapshot`
    // (`clear(index + 1)`); in release, a directory that could not open again.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path()).unwrap();
    store.append(&contract::entries(1..4, 2)).unwrap();

    let err = store.append(&[entry(u64::MAX, 2), entry(0, 2)]).unwrap_err();
    assert!(
        matches!(
            Error::from_storage(&err),
            Some(Error::IndexBeyondLimit { index: u64::MAX, .. })
        ),
        "{err}"
    );
    let err = store.append(&[entry(4, 1)]).unwrap_err();
    assert!(
        matches!(
            Error::from_storage(&err),
            Some(Error::TermGoesDown {
                index: 4,
                term: 1,
                previous: 2
            })
        ),
        "{err}"
    );
    let err = store.append(&[entry(4, 3), entry(5, 2)]).unwrap_err();
    assert!(
        matches!(Error::from_storage(&err), Some(Error::TermGoesDown { index: 5, .. })),
        "{err}"
    );
    for (index, term) in [(u64::MAX, 3), (MAX_SNAPSHOT_INDEX + 1, 3), (7, 0)] {
        let err = store
            .save_snapshot(&contract::snapshot(index, term, &["a"]))
            .unwrap_err();
        assert!(
            matches!(Error::from_storage(&err), Some(Error::ImpossibleSnapshot { index: i, term: t }) if (*i, *t) == (index, term)),
            "{err}"
        );
    }

    assert!(!store.is_poisoned());
    store.append(&contract::entries(4..6, 3)).unwrap();
    let store = common::reopen(store);
    assert_eq!((store.last_index().unwrap(), store.term(5).unwrap()), (5, 3));
}
