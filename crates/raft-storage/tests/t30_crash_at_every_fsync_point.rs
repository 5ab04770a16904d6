//! Crash at every write and fsync point: a workload runs on a file system that records,
//! after each of its operations, what a process crash, a power loss and two kinds of
//! torn write would leave. Every one of those images must reopen without error to
//! exactly a state the interrupted operation may leave (see `LogStore`'s contract):
//! every acknowledged entry, vote and snapshot is there, nothing else is, and the
//! recovered storage then takes new writes and keeps them.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::model::{crash_states, entries, entry, view, Op, View};
use common::sim_vfs::SimVfs;
use common::steps::{step, to_op};
use proptest::prelude::*;
use raft_core::{HardState, Membership, Snapshot, SnapshotMeta};
use raft_storage::{FileStorage, LogStore, Options};

const DIR: &str = "/data";

fn options() -> Options {
    // fsync on (the point of the test), tiny segments so batches roll over, a small cache.
    Options::default().segment_size(512).cache_bytes(600)
}

fn open(vfs: &SimVfs) -> Result<FileStorage, raft_storage::Error> {
    FileStorage::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options())
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters(["a", "b", "c"]),
        },
        data: bytes::Bytes::from(vec![index as u8; 700]),
    }
}

fn hs(term: u64, vote: Option<&str>, commit: u64) -> Op {
    Op::HardState(HardState {
        term,
        vote: vote.map(Into::into),
        commit,
    })
}

/// Every kind of write: batches of 1..8 entries crossing segments, votes, commits, a
/// suffix overwritten across segments, compaction, a conflicting snapshot install, a
/// snapshot beyond the log, and restarts in between.
fn workload() -> Vec<Op> {
    vec![
        Op::Append(entries(1..2, 1)),
        hs(1, Some("a"), 0),
        Op::Append(entries(2..5, 1)),
        Op::Append(entries(5..13, 1)),
        hs(1, Some("a"), 4),
        Op::Append(entries(7..10, 2)),
        hs(2, Some("b"), 6),
        Op::Snapshot(snapshot(5, 1)),
        Op::Append(entries(10..16, 2)),
        Op::Reopen,
        Op::Append(vec![entry(16, 2)]),
        Op::Snapshot(snapshot(12, 3)),
        Op::Append(entries(13..17, 3)),
        hs(3, None, 14),
        Op::Snapshot(snapshot(30, 4)),
        Op::Append(entries(31..36, 4)),
        Op::Reopen,
        Op::Append(entries(33..35, 5)),
        Op::Snapshot(snapshot(34, 5)),
        Op::Append(entries(35..37, 5)),
    ]
}

/// Runs `ops` on a recording file system, then reopens every crash image and checks
/// it against the states the operation in flight may leave. Returns how many images.
fn check_every_crash_point(ops: &[Op]) -> usize {
    let vfs = SimVfs::new();
    vfs.record_crashes();
    let mut store = open(&vfs).unwrap();
    let mut model = raft_core::MemStorage::default();
    // `states[k]` is the state after `k` ops; `ends[k]` the file-system op count then.
    let mut states: Vec<View> = vec![view(&model)];
    let mut ends = vec![vfs.ops()];
    for op in ops {
        if let Op::Reopen = op {
            drop(store);
            store = open(&vfs).unwrap();
        } else {
            op.apply(&mut store);
            op.apply(&mut model);
        }
        assert_eq!(view(&store), view(&model), "after {}", op.describe());
        states.push(view(&model));
        ends.push(vfs.ops());
    }
    drop(store);

    let crashes = vfs.take_crashes();
    let count = crashes.len();
    for crash in crashes {
        // The op in flight: the first one that had not finished before this point.
        let k = ends.partition_point(|&end| end < crash.op);
        let allowed = if k == 0 {
            vec![states[0].clone()]
        } else {
            crash_states(&states[k - 1], &ops[k - 1], &states[k])
        };
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
        let mut store = open(&vfs).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
        let got = view(&store);
        assert!(
            allowed.contains(&got),
            "{ctx}: recovered a state the operation cannot leave:\n  got: {}\n  allowed:\n    {}",
            got.describe(),
            allowed.iter().map(View::describe).collect::<Vec<_>>().join("\n    ")
        );

        // The recovered storage takes a new entry and keeps it across another restart.
        // (Term 1 at least: no entry has term 0, and the storage refuses one.)
        let next = entry(got.last_index() + 1, got.last_term().max(got.hard_state.term).max(1));
        store
            .append(std::slice::from_ref(&next))
            .unwrap_or_else(|e| panic!("{ctx}: append after recovery: {e}"));
        drop(store);
        let store = open(&vfs).unwrap_or_else(|e| panic!("{ctx}: second reopen failed: {e}"));
        let mut want = got;
        want.entries.push(next);
        assert_eq!(view(&store), want, "{ctx}: the entry appended after recovery");
    }
    count
}

#[test]
fn every_crash_image_of_a_scripted_workload_reopens_to_an_allowed_state() {
    let images = check_every_crash_point(&workload());
    assert!(images > 500, "only {images} crash images");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_crash_image_of_a_random_workload_reopens_to_an_allowed_state(steps in proptest::collection::vec(step(), 1..40)) {
        let mut model = raft_core::MemStorage::default();
        let mut term = 1;
        let mut ops = Vec::new();
        for step in &steps {
            let op = to_op(step, &model, &mut term);
            op.apply(&mut model);
            ops.push(op);
        }
        check_every_crash_point(&ops);
    }
}

#[test]
fn a_failed_write_poisons_the_storage_and_a_reopen_recovers() {
    // Fail at every point of one write in turn: the storage refuses further writes, and
    // what a process crash leaves reopens to the old or new state.
    for fail_at in 1..12 {
        let vfs = SimVfs::new();
        let mut store = open(&vfs).unwrap();
        store.append(&entries(1..4, 1)).unwrap();
        let before = view(&store);
        vfs.fail_from(vfs.ops() + fail_at);
        let op = Op::Append(entries(3..9, 2));
        let Op::Append(es) = &op else { unreachable!() };
        if store.append(es).is_ok() {
            continue; // the failure point is past this write
        }
        assert!(store.is_poisoned());
        let err = store.append(&entries(9..10, 2)).unwrap_err();
        assert!(
            matches!(
                raft_storage::Error::from_storage(&err),
                Some(raft_storage::Error::Poisoned { .. })
            ),
            "{err}"
        );
        let mut model = raft_core::MemStorage::default();
        Op::Append(entries(1..4, 1)).apply(&mut model);
        op.apply(&mut model);
        let allowed = crash_states(&before, &op, &view(&model));
        let image = vfs.process_image();
        drop(store);
        let store = open(&SimVfs::from_image(&image)).unwrap();
        assert!(
            allowed.contains(&view(&store)),
            "fail at {fail_at}: {}",
            view(&store).describe()
        );
    }
}
