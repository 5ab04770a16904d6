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
