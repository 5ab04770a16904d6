//! A thousand groups in one multi-log: each gets a few entries and a hard state (all
//! in one group-commit round), and after a reopen every one of them is back exactly.
//! (How long the reopen takes is measured by the `multilog_recover` example, never
//! asserted here.)

mod common;

use common::model::entries;
use common::multi::{group, open};
use raft_core::{HardState, Storage};
use raft_storage::{LogStore, Options};

const GROUPS: u64 = 1000;

fn hard_state(g: u64) -> HardState {
    HardState {
        term: 1 + g % 5,
        vote: Some(format!("n{}", g % 3).as_str().into()),
        commit: 2,
    }
}

#[test]
fn a_thousand_groups_reopen_with_all_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(4 << 20);
    let log = open(dir.path(), &options);
    let opened = log.stats().syncs;
    for g in 0..GROUPS {
        let mut s = group(&log, g);
        s.write_unsynced(&entries(1..4, 1 + g % 5), Some(&hard_state(g)))
            .unwrap();
    }
    log.sync().unwrap();
    assert_eq!(log.stats().syncs, opened + 1, "one fdatasync for a thousand groups");
    drop(log);

    let log = open(dir.path(), &options);
    assert_eq!(log.groups(), (0..GROUPS).collect::<Vec<_>>());
    for g in 0..GROUPS {
        let s = group(&log, g);
        assert_eq!(s.initial_state().unwrap().hard_state, hard_state(g), "group {g}");
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 3), "group {g}");
        assert_eq!(
            s.entries(1, 4, u64::MAX).unwrap(),
            entries(1..4, 1 + g % 5),
            "group {g}"
        );
    }
}

#[test]
fn a_checkpoint_larger_than_a_segment_does_not_make_every_write_roll() {
    // 300 groups restate ~25 KiB in every checkpoint, far over the 1 KiB segments:
    // the checkpoint does not count towards the size, so a segment still takes about
    // 1 KiB of records.
    let dir = tempfile::tempdir().unwrap();
    let options = common::no_fsync(Options::default().segment_size(1024));
    let log = open(dir.path(), &options);
    let mut groups: Vec<_> = (0..300).map(|g| group(&log, g)).collect();
    log.sync().unwrap();
    let before = log.stats().newest_segment;
    for s in &mut groups {
        s.append(&entries(1..2, 1)).unwrap();
    }
    let rolled = log.stats().newest_segment - before;
    let bytes: u64 = (0..300).map(|_| 12 + 3 + entries(1..2, 1)[0].size()).sum();
    assert!(
        rolled <= bytes / 1024 * 2 + 2,
        "{rolled} segments for {bytes} bytes of records"
    );
    drop(groups);
    drop(log);
    let log = open(dir.path(), &options);
    assert_eq!(log.groups().len(), 300);
    assert!(log.groups().iter().all(|&g| group(&log, g).last_index().unwrap() == 1));
}
