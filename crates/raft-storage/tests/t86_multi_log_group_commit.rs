//! Group commit across groups: writes of many groups without waiting, then one sync,
//! cost exactly one fdatasync of the shared WAL; the groups of one multi-log share one
//! sync domain and other storages do not; and a group is read from other threads while
//! other groups write and sync.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::model::entries;
use common::multi::{group, CountingVfs};
use raft_core::{HardState, MemStorage, Storage};
use raft_storage::vfs::StdVfs;
use raft_storage::{LogStore, MultiLog, Options};

#[test]
fn sixteen_groups_written_unsynced_then_one_sync_cost_one_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(CountingVfs::new(StdVfs, ".mlog"));
    let log = MultiLog::open_with_vfs(vfs.clone(), dir.path(), Options::default()).unwrap();
    let mut groups: Vec<_> = (0..16).map(|g| group(&log, g)).collect();
    log.sync().unwrap();
    let before = vfs.count();
    for (g, s) in groups.iter_mut().enumerate() {
        let hs = HardState {
            term: 1,
            vote: Some("n1".into()),
            commit: g as u64 % 3,
        };
        s.write_unsynced(&entries(1..4, 1), Some(&hs)).unwrap();
    }
    assert_eq!(vfs.count(), before, "write_unsynced does not sync");
    let domain = groups[0].sync_domain().unwrap();
    domain.sync().unwrap();
    assert_eq!(vfs.count(), before + 1, "one fdatasync for sixteen groups");
    // A sync with nothing new written costs nothing.
    groups[5].sync_domain().unwrap().sync().unwrap();
    assert_eq!(vfs.count(), before + 1);
    // append is write_unsynced + sync: one fdatasync each.
    groups[3].append(&entries(4..5, 1)).unwrap();
    assert_eq!(vfs.count(), before + 2);
    // The domain keeps the multi-log open, as a handle does.
    drop((groups, domain));
    drop(log);
    let log = MultiLog::open(dir.path(), Options::default()).unwrap();
    for g in 0..16 {
        let s = group(&log, g);
        assert_eq!(s.last_index().unwrap(), if g == 3 { 4 } else { 3 }, "group {g}");
        assert_eq!(s.initial_state().unwrap().hard_state.commit, g % 3);
    }
}

#[test]
fn groups_of_one_multi_log_share_a_sync_domain_and_nothing_else_does() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (l1, l2) = (
        MultiLog::open(d1.path(), Options::default()).unwrap(),
        MultiLog::open(d2.path(), Options::default()).unwrap(),
    );
    let id = |s: &dyn Fn() -> Option<Arc<dyn raft_storage::SyncDomain>>| s().map(|d| d.id());
    let (a, b, c) = (group(&l1, 1), group(&l1, 2), group(&l2, 1));
    assert_eq!(id(&|| a.sync_domain()), id(&|| b.sync_domain()));
    assert_ne!(id(&|| a.sync_domain()), id(&|| c.sync_domain()));
    assert!(MemStorage::default().sync_domain().is_none());
    let fs_dir = tempfile::tempdir().unwrap();
    assert!(common::open(fs_dir.path(), &Options::default()).sync_domain().is_none());
}

#[test]
fn the_default_write_unsynced_is_durable_on_return() {
    // FileStorage keeps the default: append + set_hard_state.
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::open(dir.path(), &Options::default());
    let hs = HardState {
        term: 2,
        vote: None,
        commit: 1,
    };
    s.write_unsynced(&entries(1..3, 2), Some(&hs)).unwrap();
    let s = common::reopen(s);
    assert_eq!(s.last_index().unwrap(), 2);
    assert_eq!(s.initial_state().unwrap().hard_state, hs);
}

#[test]
fn a_group_is_read_by_other_threads_while_other_groups_write() {
    let dir = tempfile::tempdir().unwrap();
    let log = MultiLog::open(dir.path(), Options::default().segment_size(4096)).unwrap();
    let mut a = group(&log, 0);
    a.append(&entries(1..50, 1)).unwrap();
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (a, stop) = (a.clone(), stop.clone());
            thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads == 0 {
                    assert_eq!(a.entries(1, 50, u64::MAX).unwrap(), entries(1..50, 1));
                    assert_eq!(a.term(49).unwrap(), 1);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut others: Vec<_> = (1..8).map(|g| group(&log, g)).collect();
    for i in 1..=60u64 {
        for s in &mut others {
            s.write_unsynced(&entries(i..i + 1, 1), None).unwrap();
        }
        log.sync().unwrap();
        if i % 20 == 0 {
            for s in &mut others {
                s.save_snapshot(&raft_core::Snapshot {
                    meta: raft_core::SnapshotMeta {
                        index: i,
                        term: 1,
                        membership: Default::default(),
                    },
                    data: bytes::Bytes::new(),
                })
                .unwrap();
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    for s in &others {
        assert_eq!(s.last_index().unwrap(), 60);
    }
}

#[test]
fn unsynced_writes_are_read_back_before_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = MultiLog::open(dir.path(), Options::default().segment_size(1024)).unwrap();
    let (mut a, mut b) = (group(&log, 1), group(&log, 2));
    a.write_unsynced(&entries(1..20, 1), None).unwrap();
    b.write_unsynced(&entries(1..5, 1), None).unwrap();
    a.write_unsynced(&entries(10..12, 2), None).unwrap();
    assert_eq!(a.last_index().unwrap(), 11);
    let mut want = entries(1..10, 1);
    want.extend(entries(10..12, 2));
    assert_eq!(a.entries(1, 12, u64::MAX).unwrap(), want);
    assert_eq!(b.entries(2, 5, u64::MAX).unwrap(), entries(2..5, 1));
    // A byte budget cuts the read where MemStorage's does.
    let mut model = MemStorage::default();
    model.append(&want).unwrap();
    for budget in [0, 100, 250, 600, 1000, 5000] {
        assert_eq!(
            a.entries(3, 12, budget).unwrap(),
            model.entries(3, 12, budget).unwrap(),
            "budget {budget}"
        );
    }
    log.sync().unwrap();
}

#[test]
fn groups_written_from_many_threads_at_once_keep_every_write() {
    // Each thread drives its own group (appends, hard states, compactions), all through
    // one multi-log with small segments, so rolls, checkpoints and segment deletions
    // race with other threads' writes and syncs; afterwards, and after a reopen, every
    // group holds exactly its own writes.
    let dir = tempfile::tempdir().unwrap();
    let options = common::no_fsync(Options::default().segment_size(2048));
    let log = MultiLog::open(dir.path(), options.clone()).unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|g| {
            let mut s = group(&log, g);
            thread::spawn(move || {
                let mut model = MemStorage::default();
                for i in 1..=60u64 {
                    let es = entries(i..i + 1, 1);
                    let hs = HardState {
                        term: 1,
                        vote: None,
                        commit: i - 1,
                    };
                    s.write_unsynced(&es, Some(&hs)).unwrap();
                    s.sync_domain().unwrap().sync().unwrap();
                    model.append(&es).unwrap();
                    model.set_hard_state(hs);
                    if i % 25 == 0 {
                        let snap = raft_core::Snapshot {
                            meta: raft_core::SnapshotMeta {
                                index: i - 5,
                                term: 1,
                                membership: Default::default(),
                            },
                            data: bytes::Bytes::from(format!("g{g}")),
                        };
                        s.save_snapshot(&snap).unwrap();
                        model.apply_snapshot(snap);
                    }
                }
                (g, common::model::view(&model))
            })
        })
        .collect();
    let want: std::collections::BTreeMap<u64, _> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(common::multi::views(&log), want);
    drop(log);
    let log = MultiLog::open(dir.path(), options).unwrap();
    assert_eq!(common::multi::views(&log), want);
}
