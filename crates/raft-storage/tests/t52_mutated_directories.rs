//! A valid directory with one file's bytes changed at arbitrary positions, with the
//! checksums left as they are (the damage a flipped bit does) or recomputed (damage the
//! checksums cannot see, as a crafted directory would be): open never panics, and
//! either refuses with a typed error naming a file of the directory, or opens to a log
//! that holds together (consecutive indexes, terms that never go down, every read
//! either right or a typed error) and reopens to the same.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use raft_core::{HardState, Storage, MAX_INDEX};
use raft_storage::{contract, Error, FileStorage, LogStore, Options};

fn options() -> Options {
    common::no_fsync(common::small_options())
}

/// Entries 1..=40 (terms 1, then 2 from 21) in several segments, a snapshot at 10,
/// commit 30.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = common::open(dir.path(), &options());
    store.append(&contract::entries(1..21, 1)).unwrap();
    store.append(&contract::entries(21..41, 2)).unwrap();
    store.save_snapshot(&contract::snapshot(10, 1, &["a", "b"])).unwrap();
    store
        .set_hard_state(&HardState {
            term: 2,
            vote: Some("a".into()),
            commit: 30,
        })
        .unwrap();
    dir
}

/// The files a mutation may hit, in a stable order (the lock file is not read).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("LOCK"))
        .collect();
    files.sort();
    files
}

/// What an opened storage must hold to: one consistent log, readable or typed errors.
fn check_consistent(store: &FileStorage) -> Result<(u64, u64), TestCaseError> {
    let first = store.first_index().unwrap();
    let last = store.last_index().unwrap();
    prop_assert!(
        first >= 1 && first <= last + 1 && last <= MAX_INDEX,
        "first {first} last {last}"
    );
    let snap_term = store.term(first - 1).unwrap();
    prop_assert!(first == 1 || snap_term >= 1);
    let mut previous = snap_term;
    for i in first..=last {
        let term = store.term(i).unwrap();
        prop_assert!(term >= previous.max(1), "term({i}) = {term} after {previous}");
        previous = term;
        match store.entries(i, i + 1, u64::MAX) {
            Ok(es) => prop_assert!(es.len() == 1 && es[0].index == i && es[0].term == term, "{es:?}"),
            Err(e) => prop_assert!(matches!(Error::from_storage(&e), Some(Error::Corrupt { .. })), "{e}"),
        }
    }
    if let Err(e) = store.snapshot() {
        prop_assert!(matches!(Error::from_storage(&e), Some(Error::Corrupt { .. })), "{e}");
    }
    prop_assert!(store.initial_state().unwrap().hard_state.commit <= last);
    Ok((first, last))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_file_never_panics_open_and_is_refused_or_opens_consistently(
        which in any::<prop::sample::Index>(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
        fix_checksums in any::<bool>(),
    ) {
        let dir = populated();
        let victim = which.get(&files(dir.path())).clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        for (at, value) in &changes {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if fix_checksums {
            common::craft::fix_checksums(&mut bytes);
        }
        std::fs::write(&victim, &bytes).unwrap();

        match FileStorage::open(dir.path(), options()) {
            Ok(store) => {
                let seen = check_consistent(&store)?;
                let store = common::reopen(store);
                prop_assert_eq!(check_consistent(&store)?, seen);
            }
            Err(e) => {
                prop_assert!(!matches!(e, Error::Io { .. } | Error::Locked { .. }), "{}", e);
                prop_assert!(e.to_string().contains(&dir.path().display().to_string()), "{}", e);
            }
        }
    }
}
