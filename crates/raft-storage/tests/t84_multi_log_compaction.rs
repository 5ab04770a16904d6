//! Per-group compaction in a shared log: a segment is deleted once no group needs any
//! record in it, and not before; hard states and snapshots (whose records were in the
//! deleted segments) survive that and a reopen, through the checkpoint every segment
//! opens with.

mod common;

use common::model::{entries, view};
use common::multi::{group, open, views};
use raft_core::{HardState, Membership, Snapshot, SnapshotMeta, Storage};
use raft_storage::{LogStore, Options};

fn snapshot(index: u64, term: u64, g: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters([format!("g{g}")]),
        },
        data: bytes::Bytes::from(format!("group {g} at {index}")),
    }
}

#[test]
fn segments_go_once_every_group_snapshots_past_them_and_state_survives() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(2048);
    let log = open(dir.path(), &options);
    let mut handles: Vec<_> = (0..20).map(|g| group(&log, g)).collect();
    for round in 0..10u64 {
        for (g, h) in handles.iter_mut().enumerate() {
            let first = round * 3 + 1;
            h.write_unsynced(
                &entries(first..first + 3, 1),
                Some(&HardState {
                    term: 1,
                    vote: Some(format!("n{g}").as_str().into()),
                    commit: first + 2,
                }),
            )
            .unwrap();
        }
        log.sync().unwrap();
    }
    let grown = log.stats().segments;
    assert!(grown > 10, "the workload should span many segments, got {grown}");

    // All but one group compact everything: that group pins every segment.
    for (g, h) in handles.iter_mut().enumerate().skip(1) {
        h.save_snapshot(&snapshot(30, 1, g as u64)).unwrap();
    }
    // Group 0's entries of each of the 10 rounds are in a segment of their own round.
    let pinned = log.stats().segments;
    assert!(
        (10..grown).contains(&pinned),
        "{pinned} of {grown}: group 0 still needs one segment per round"
    );
    // Group 0 compacts half its log: the segments holding only its first half go.
    handles[0].save_snapshot(&snapshot(15, 1, 0)).unwrap();
    let half = log.stats().segments;
    assert!(half < pinned && half > 1, "{half} of {pinned}");
    handles[0].save_snapshot(&snapshot(30, 1, 0)).unwrap();
    assert_eq!(log.stats().segments, 1, "only the newest segment is left");
    let before = views(&log);
    for (g, v) in &before {
        assert_eq!(v.hard_state.commit, 30, "group {g}");
        assert_eq!(v.snapshot.meta.index, 30, "group {g}");
        assert!(v.entries.is_empty());
    }
    drop(handles);
    drop(log);
    let log = open(dir.path(), &options);
    assert_eq!(views(&log), before);
    // And the groups go on.
    let mut g7 = group(&log, 7);
    g7.append(&entries(31..33, 2)).unwrap();
    assert_eq!(g7.last_index().unwrap(), 32);
    assert_eq!(g7.snapshot().unwrap().data, "group 7 at 30");
}

#[test]
fn removing_a_group_frees_the_segments_it_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(1024);
    let log = open(dir.path(), &options);
    let (mut idle, mut busy) = (group(&log, 1), group(&log, 2));
    idle.append(&entries(1..3, 1)).unwrap();
    for i in 1..=40 {
        busy.append(&entries(i..i + 1, 1)).unwrap();
    }
    busy.save_snapshot(&snapshot(40, 1, 2)).unwrap();
    let pinned = log.stats().segments;
    assert!(pinned >= 2, "group 1's first segment stays: {pinned}");
    log.remove_group(1).unwrap();
    assert_eq!(log.stats().segments, 1);
    assert!(matches!(
        raft_storage::Error::from_storage(&idle.append(&entries(3..4, 1)).unwrap_err()),
        Some(raft_storage::Error::GroupRemoved { group: 1, .. })
    ));
    drop((idle, busy));
    drop(log);
    let log = open(dir.path(), &options);
    assert_eq!(log.groups(), vec![2]);
    // A group created again under the same id starts empty.
    let again = group(&log, 1);
    assert_eq!(view(&again).entries, vec![]);
    assert_eq!(again.last_index().unwrap(), 0);
}

#[test]
fn a_conflicting_snapshot_install_drops_the_groups_log_and_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(1024);
    let log = open(dir.path(), &options);
    let mut g = group(&log, 9);
    g.append(&entries(1..30, 1)).unwrap();
    assert!(log.stats().segments > 2);
    g.save_snapshot(&snapshot(10, 3, 9)).unwrap();
    assert_eq!((g.first_index().unwrap(), g.last_index().unwrap()), (11, 10));
    assert_eq!(log.stats().segments, 1);
    drop(g);
    drop(log);
    let log = open(dir.path(), &options);
    let g = group(&log, 9);
    assert_eq!(
        (g.first_index().unwrap(), g.last_index().unwrap(), g.term(10).unwrap()),
        (11, 10, 3)
    );
}
