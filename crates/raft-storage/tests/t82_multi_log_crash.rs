//! Crash at every write and fsync point of a workload that interleaves several groups
//! in one MultiLog: appends crossing segments, suffix overwrites, hard states,
//! group-commit rounds (several groups' writes, one sync), compactions that delete
//! segments, conflicting snapshot installs, group removals and restarts. Every crash
//! image (process crash, power loss, two kinds of torn write) must reopen without
//! error, every group to a state its own operation in flight may leave (LogStore's
//! rule, including the interrupted-append one) and every other group exactly as its
//! completed writes left it; the recovered log then takes new writes and keeps them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::model::{entries, entry, view, Op, View};
use common::multi::{group, model_views, views, MOp};
use common::sim_vfs::SimVfs;
use proptest::prelude::*;
use raft_core::{HardState, MemStorage, Membership, Snapshot, SnapshotMeta, Storage};
use raft_storage::{LogStore, MultiLog, Options};

const DIR: &str = "/multi";

fn options() -> Options {
    Options::default().segment_size(700)
}

fn open(vfs: &SimVfs) -> Result<MultiLog, raft_storage::Error> {
    MultiLog::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options())
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters(["a", "b", "c"]),
        },
        data: bytes::Bytes::from(vec![index as u8; 300]),
    }
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: Some("a".into()),
        commit,
    }
}

fn on(g: u64, op: Op) -> MOp {
    MOp::On(g, op)
}

fn workload() -> Vec<MOp> {
    vec![
        on(1, Op::Append(entries(1..3, 1))),
        MOp::Round(vec![(2, entries(1..4, 1), hs(1, 0)), (3, entries(1..2, 1), hs(1, 0))]),
        on(1, Op::HardState(hs(1, 2))),
        MOp::Round(vec![
            (1, entries(3..7, 1), hs(1, 2)),
            (2, entries(4..6, 1), hs(1, 3)),
            (3, entries(2..5, 1), hs(1, 1)),
        ]),
        on(2, Op::Append(entries(3..8, 2))),
        on(1, Op::Snapshot(snapshot(4, 1))),
        MOp::Round(vec![(3, entries(5..9, 1), hs(2, 4)), (1, entries(7..9, 1), hs(2, 5))]),
        on(2, Op::Snapshot(snapshot(6, 2))),
        on(3, Op::Snapshot(snapshot(12, 3))),
        on(1, Op::Reopen),
        on(3, Op::Append(entries(13..17, 3))),
        MOp::Remove(2),
        on(1, Op::Append(vec![entry(9, 2)])),
        on(1, Op::Snapshot(snapshot(9, 2))),
        on(3, Op::Snapshot(snapshot(15, 3))),
        on(4, Op::Append(entries(1..4, 1))),
        MOp::Round(vec![
            (4, entries(4..6, 1), hs(1, 3)),
            (3, entries(17..19, 3), hs(3, 16)),
        ]),
        on(1, Op::Reopen),
        on(4, Op::Append(entries(3..5, 2))),
    ]
}

/// Runs `ops`, then reopens every crash image and checks it. Returns how many images.
fn check_every_crash_point(ops: &[MOp]) -> usize {
    let vfs = SimVfs::new();
    vfs.record_crashes();
    let mut log = open(&vfs).unwrap();
    let mut models: BTreeMap<u64, MemStorage> = BTreeMap::new();
    let mut states = vec![model_views(&models)];
    let mut ends = vec![vfs.ops()];
    for op in ops {
        if let MOp::On(_, Op::Reopen) = op {
            drop(log);
            log = open(&vfs).unwrap();
        } else {
            op.apply(&log);
            op.apply_model(&mut models);
        }
        assert_eq!(views(&log), model_views(&models), "after {}", op.describe());
        states.push(model_views(&models));
        ends.push(vfs.ops());
    }
    drop(log);

    let crashes = vfs.take_crashes();
    let count = crashes.len();
    for crash in crashes {
        let k = ends.partition_point(|&end| end < crash.op);
        let during = if k == 0 {
            "open".to_owned()
        } else {
            ops[k - 1].describe()
        };
        let ctx = format!(
            "crash ({}) after fs op {} during `{during}` (op {k})",
            crash.kind, crash.op
        );
        let vfs = SimVfs::from_image(&crash.files);
        let log = open(&vfs).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
        let got = views(&log);
        let (before, after) = if k == 0 {
            (&states[0], &states[0])
        } else {
            (&states[k - 1], &states[k])
        };
        let all: std::collections::BTreeSet<u64> =
            before.keys().chain(after.keys()).chain(got.keys()).copied().collect();
        for g in all {
            let allowed = if k == 0 {
                vec![before.get(&g).cloned()]
            } else {
                ops[k - 1].crash_states(g, before.get(&g), after.get(&g))
            };
            let found = got.get(&g).cloned();
            assert!(
                allowed.contains(&found),
                "{ctx}: group {g} recovered a state the operation cannot leave:\n  got: {}\n  allowed:\n    {}",
                found.as_ref().map_or("absent".into(), View::describe),
                allowed
                    .iter()
                    .map(|v| v.as_ref().map_or("absent".into(), View::describe))
                    .collect::<Vec<_>>()
                    .join("\n    ")
            );
        }

        // The recovered log takes a new entry in every group and keeps it.
        let mut want = got;
        for (g, v) in &mut want {
            let next = entry(v.last_index() + 1, v.last_term().max(v.hard_state.term).max(1));
            let mut s = group(&log, *g);
            s.append(std::slice::from_ref(&next))
                .unwrap_or_else(|e| panic!("{ctx}: group {g}: append after recovery: {e}"));
            v.entries.push(next);
            assert_eq!(view(&s).entries, v.entries, "{ctx}: group {g}");
        }
        drop(log);
        let log = open(&vfs).unwrap_or_else(|e| panic!("{ctx}: second reopen failed: {e}"));
        assert_eq!(views(&log), want, "{ctx}: the entries appended after recovery");
    }
    count
}

#[test]
fn every_crash_image_of_an_interleaved_workload_reopens_to_allowed_states() {
    let images = check_every_crash_point(&workload());
    assert!(images > 500, "only {images} crash images");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Property: the same holds for random interleavings of operations on several
    /// groups, group-commit rounds and removals included.
    #[test]
    fn every_crash_image_of_a_random_interleaving_reopens_to_allowed_states(
        steps in proptest::collection::vec(common::multi::mstep(), 1..25)
    ) {
        let mut models: BTreeMap<u64, MemStorage> = BTreeMap::new();
        let mut terms: BTreeMap<u64, u64> = BTreeMap::new();
        let mut ops = Vec::new();
        for step in &steps {
            let op = common::multi::to_mop(step, &models, &mut terms);
            op.apply_model(&mut models);
            ops.push(op);
        }
        check_every_crash_point(&ops);
    }
}

#[test]
fn a_failed_write_poisons_every_group_and_a_reopen_recovers() {
    for fail_at in 1..10 {
        let vfs = SimVfs::new();
        let log = open(&vfs).unwrap();
        let (mut a, mut b) = (group(&log, 1), group(&log, 2));
        a.append(&entries(1..4, 1)).unwrap();
        b.append(&entries(1..2, 1)).unwrap();
        let before = (view(&a), view(&b));
        vfs.fail_from(vfs.ops() + fail_at);
        if a.append(&entries(3..9, 2)).is_ok() {
            continue;
        }
        let err = b.append(&entries(2..3, 1)).unwrap_err();
        assert!(
            matches!(
                raft_storage::Error::from_storage(&err),
                Some(raft_storage::Error::Poisoned { .. })
            ),
            "fail at {fail_at}: {err}"
        );
        let image = vfs.process_image();
        drop((a, b, log));
        let log = open(&SimVfs::from_image(&image)).unwrap();
        assert_eq!(view(&group(&log, 2)), before.1, "fail at {fail_at}");
        let a = view(&group(&log, 1));
        let mut model = MemStorage::default();
        model.append(&entries(1..4, 1)).unwrap();
        let mut after = model.clone();
        after.append(&entries(3..9, 2)).unwrap();
        let allowed = common::model::crash_states(&before.0, &Op::Append(entries(3..9, 2)), &view(&after));
        assert!(allowed.contains(&a), "fail at {fail_at}: {}", a.describe());
        let _ = model.last_index();
    }
}
