//! The whole log is never held in memory: a log many times larger than the cache keeps
//! only its newest entries cached, reads every older entry back from disk, and
//! compaction frees the disk by deleting whole segments.

mod common;

use bytes::Bytes;
use raft_core::{Entry, EntryPayload, Storage};
use raft_storage::{contract, LogStore, Options};

fn big_entry(index: u64) -> Entry {
    Entry {
        term: 1 + index / 1000,
        index,
        payload: EntryPayload::Command(Bytes::from(vec![index as u8; 4000])),
    }
}

#[test]
fn a_log_of_16_mib_with_a_256_kib_cache_reads_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = 256 << 10;
    let options = common::no_fsync(Options::default().segment_size(1 << 20).cache_bytes(cache));
    let mut store = common::open(dir.path(), &options);
    let n = 4000u64; // 4000 entries of 4 KB: 16 MB
    for batch in (1..=n).collect::<Vec<_>>().chunks(64) {
        let entries: Vec<Entry> = batch.iter().map(|&i| big_entry(i)).collect();
        store.append(&entries).unwrap();
    }
    let stats = store.stats();
    assert!(stats.cached_bytes <= cache, "{stats:?}");
    assert!(stats.cached_entries < 70, "{stats:?}");
    assert!(stats.segments >= 15, "{stats:?}");

    // Old entries come from disk, new ones from the cache, windows span both.
    for (low, high) in [(1, 3), (1000, 1300), (3900, 4001), (2500, 2501)] {
        let got = store.entries(low, high, u64::MAX).unwrap();
        let want: Vec<Entry> = (low..high).map(big_entry).collect();
        assert_eq!(got, want, "entries({low}..{high})");
    }
    assert_eq!(store.term(1500).unwrap(), 2);
    assert_eq!(
        store.entries(1, n + 1, 64 << 10).unwrap().len(),
        16,
        "the byte budget holds on disk reads"
    );

    // Compaction deletes the segments behind the snapshot, and only those.
    let files_before = common::segment_files(dir.path()).len();
    store.save_snapshot(&contract::snapshot(3000, 4, &["a"])).unwrap();
    let files_after = common::segment_files(dir.path()).len();
    // 3000 of the 4000 entries are in the snapshot: about three quarters of the files go.
    assert!(
        files_after * 4 <= files_before + 4,
        "{files_before} -> {files_after} segment files"
    );
    assert_eq!(files_after, store.stats().segments);
    assert_eq!(
        store.entries(3001, 3003, u64::MAX).unwrap(),
        vec![big_entry(3001), big_entry(3002)]
    );

    // And after a restart (cache empty) everything still reads from disk.
    let store = common::reopen(store);
    assert_eq!(store.stats().cached_entries, 0);
    assert_eq!(
        store.entries(3001, n + 1, u64::MAX).unwrap(),
        (3001..=n).map(big_entry).collect::<Vec<_>>()
    );
}
