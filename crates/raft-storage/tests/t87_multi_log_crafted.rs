//! Directories a multi-log never writes: a segment with live records deleted, a missing
//! snapshot file, a renamed segment, records with valid checksums but impossible
//! content, and (a proptest) any file of a valid directory changed at random, with the
//! checksums left or recomputed. Open never panics: it refuses with a typed error
//! naming a file of the directory, or opens to groups whose logs hold together.

mod common;

use std::path::{Path, PathBuf};

use common::craft::{fix_checksums, record};
use common::multi::{group, open};
use common::multi_disk::segments;
use proptest::prelude::*;
use raft_core::{HardState, Storage, MAX_INDEX};
use raft_storage::{contract, Corruption, Error, LogStore, MultiLog, Options};

fn options() -> Options {
    common::no_fsync(Options::default().segment_size(512))
}

/// Three groups: 0 with entries 1..=30 (term 1, then 2) and a snapshot at 10; 1 with
/// entries 1..=8; 2 removed. Several segments.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &options());
    let (mut a, mut b, mut c) = (group(&log, 0), group(&log, 1), group(&log, 2));
    b.append(&contract::entries(1..9, 1)).unwrap();
    c.append(&contract::entries(1..3, 1)).unwrap();
    a.append(&contract::entries(1..16, 1)).unwrap();
    a.append(&contract::entries(16..31, 2)).unwrap();
    a.save_snapshot(&contract::snapshot(10, 1, &["a", "b"])).unwrap();
    a.set_hard_state(&HardState {
        term: 2,
        vote: Some("a".into()),
        commit: 20,
    })
    .unwrap();
    log.remove_group(2).unwrap();
    dir
}

fn reopen_err(dir: &Path) -> Error {
    match MultiLog::open(dir, options()) {
        Ok(log) => panic!("opened: groups {:?}", log.groups()),
        Err(e) => e,
    }
}

#[test]
fn a_deleted_segment_holding_live_entries_is_refused() {
    let dir = populated();
    let segs = segments(dir.path());
    assert!(segs.len() >= 2, "{segs:?}");
    for victim in &segs[..segs.len() - 1] {
        let copy = common::copy_dir(dir.path());
        let path = copy.path().join(victim.file_name().unwrap());
        std::fs::remove_file(&path).unwrap();
        match reopen_err(copy.path()) {
            Error::MissingLogFile { path: p } => assert_eq!(p, path),
            e => panic!("{}: want MissingLogFile, got {e}", victim.display()),
        }
    }
}

#[test]
fn a_missing_snapshot_file_is_refused_and_a_stray_one_removed() {
    let dir = populated();
    let snap: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    assert_eq!(snap.len(), 1, "{snap:?}");
    let copy = common::copy_dir(dir.path());
    std::fs::remove_file(copy.path().join(snap[0].file_name().unwrap())).unwrap();
    assert!(matches!(
        reopen_err(copy.path()),
        Error::MissingSnapshot { index: 10, .. }
    ));

    // A snapshot file no group has (left by an interrupted install) goes on open.
    let stray = dir
        .path()
        .join("g00000000000000000001-snapshot-00000000000000000005-00000000000000000001.snap");
    std::fs::copy(&snap[0], &stray).unwrap();
    let log = open(dir.path(), &options());
    assert!(!stray.exists());
    assert_eq!(group(&log, 0).snapshot().unwrap().meta.index, 10);
}

#[test]
fn a_renamed_segment_or_a_foreign_file_is_refused() {
    let dir = populated();
    let segs = segments(dir.path());
    let copy = common::copy_dir(dir.path());
    let last = copy.path().join(segs.last().unwrap().file_name().unwrap());
    std::fs::rename(&last, copy.path().join("00000000000000000099.mlog")).unwrap();
    assert!(matches!(
        reopen_err(copy.path()),
        Error::Corrupt {
            kind: Corruption::NameMismatch { name: 99, .. },
            ..
        }
    ));
    let copy = common::copy_dir(dir.path());
    std::fs::write(copy.path().join("notes.txt"), b"hi").unwrap();
    assert!(matches!(reopen_err(copy.path()), Error::ForeignFile { .. }));
}

/// Appends records with valid checksums (payloads as the format gives them) to the
/// newest segment of a copy, and opens it.
fn with_records(dir: &Path, payloads: &[Vec<u8>]) -> Result<MultiLog, Error> {
    let copy = common::copy_dir(dir);
    let last = copy.path().join(segments(dir).last().unwrap().file_name().unwrap());
    let mut bytes = std::fs::read(&last).unwrap();
    for p in payloads {
        bytes.extend(record(p));
    }
    std::fs::write(&last, bytes).unwrap();
    let r = MultiLog::open(copy.path(), options());
    drop(copy);
    r
}

fn entry_record(group: u64, term: u64, index: u64) -> Vec<u8> {
    let e = raft_core::Entry {
        term,
        index,
        payload: raft_core::EntryPayload::Command("x".into()),
    };
    postcard::to_stdvec(&(0u32, group, e)).unwrap()
}

#[test]
fn records_with_valid_checksums_but_impossible_content_are_refused() {
    let dir = populated();
    let corrupt = |payloads: &[Vec<u8>]| match with_records(dir.path(), payloads) {
        Ok(log) => panic!("opened: {:?}", log.groups()),
        Err(Error::Corrupt { kind, .. }) => kind,
        Err(e) => panic!("want Corrupt, got {e}"),
    };
    assert_eq!(corrupt(&[entry_record(7, 1, 1)]), Corruption::UnknownGroup { group: 7 });
    assert_eq!(corrupt(&[entry_record(1, 0, 9)]), Corruption::ZeroTerm { index: 9 });
    assert_eq!(
        corrupt(&[entry_record(1, 1, MAX_INDEX + 1)]),
        Corruption::IndexBeyondLimit { index: MAX_INDEX + 1 }
    );
    assert_eq!(corrupt(&[vec![9, 1, 2]]), Corruption::Undecodable);
    // A checkpoint anywhere but first in its segment.
    assert_eq!(
        corrupt(&[postcard::to_stdvec(&(4u32, 0u8, 0u8)).unwrap()]),
        Corruption::Undecodable
    );
    // Removing a group that does not exist.
    assert_eq!(corrupt(&[vec![3, 42]]), Corruption::UnknownGroup { group: 42 });
    // An entry whose term goes down, and a hole in a group's log.
    assert!(matches!(
        with_records(dir.path(), &[entry_record(0, 1, 31)]),
        Err(Error::Corrupt {
            kind: Corruption::TermGoesDown { index: 31, .. },
            ..
        })
    ));
    assert!(matches!(
        with_records(dir.path(), &[entry_record(1, 1, 12)]),
        Err(Error::GroupLogHole {
            group: 1,
            expected: 9,
            found: 12,
            ..
        })
    ));
    // A valid record is taken.
    let log = with_records(dir.path(), &[entry_record(1, 1, 9)]).unwrap();
    assert_eq!(group(&log, 1).last_index().unwrap(), 9);
}

/// What an opened multi-log must hold to: each group one consistent log.
fn check_consistent(log: &MultiLog) -> Result<Vec<(u64, u64, u64)>, TestCaseError> {
    let mut seen = Vec::new();
    for id in log.groups() {
        let g = group(log, id);
        let first = g.first_index().unwrap();
        let last = g.last_index().unwrap();
        prop_assert!(
            first >= 1 && first <= last + 1 && last <= MAX_INDEX,
            "first {first} last {last}"
        );
        let mut previous = g.term(first - 1).unwrap();
        for i in first..=last {
            let term = g.term(i).unwrap();
            prop_assert!(term >= previous.max(1), "term({i}) = {term} after {previous}");
            previous = term;
            match g.entries(i, i + 1, u64::MAX) {
                Ok(es) => prop_assert!(es.len() == 1 && es[0].index == i && es[0].term == term, "{es:?}"),
                Err(e) => prop_assert!(matches!(Error::from_storage(&e), Some(Error::Corrupt { .. })), "{e}"),
            }
        }
        if let Err(e) = g.snapshot() {
            prop_assert!(matches!(Error::from_storage(&e), Some(Error::Corrupt { .. })), "{e}");
        }
        prop_assert!(g.initial_state().unwrap().hard_state.commit <= last);
        seen.push((id, first, last));
    }
    Ok(seen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Property: open of a directory with one file mutated never panics, and either
    /// refuses with a typed error naming the directory or opens consistently (and
    /// reopens to the same).
    #[test]
    fn a_mutated_file_never_panics_open_and_is_refused_or_opens_consistently(
        which in any::<prop::sample::Index>(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
        fix in any::<bool>(),
    ) {
        let dir = populated();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("LOCK"))
            .collect();
        files.sort();
        let victim = which.get(&files).clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        for (at, value) in &changes {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if fix {
            fix_checksums(&mut bytes);
        }
        std::fs::write(&victim, &bytes).unwrap();
        match MultiLog::open(dir.path(), options()) {
            Ok(log) => {
                let seen = check_consistent(&log)?;
                drop(log);
                let log = open(dir.path(), &options());
                prop_assert_eq!(check_consistent(&log)?, seen);
            }
            Err(e) => {
                prop_assert!(!matches!(e, Error::Io { .. } | Error::Locked { .. }), "{}", e);
                prop_assert!(e.to_string().contains(&dir.path().display().to_string()), "{}", e);
            }
        }
    }
}
