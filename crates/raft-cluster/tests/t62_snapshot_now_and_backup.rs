//! `RaftHandle::snapshot_now` and `open_snapshot`: a snapshot taken on demand on the
//! leader while writers run holds every write acknowledged before the call; the
//! stream `open_snapshot` gives restores a fresh state machine to that state (a
//! backup); asking again with nothing new applied answers the same snapshot; a
//! follower can take its own.

mod support;

use std::io::Read;
use std::sync::{Arc, Mutex};

use raft_cluster::StateMachine;
use support::kv::{Kv, KvState};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_now_holds_every_acknowledged_write_and_restores_as_a_backup() {
    // No periodic snapshots: every one here is asked for.
    let tc = TestCluster::start(3, config(0)).await;
    let writers = tc.spawn_writers(3, 1_000_000);
    tc.wait_acked(200).await;

    let leader = tc.leader().await;
    let acked_before: Vec<u64> = tc.acked().iter().map(|a| a.index).collect();
    let meta = leader.snapshot_now().await.expect("a snapshot");
    let highest = acked_before.iter().copied().max().unwrap_or(0);
    assert!(
        meta.index >= highest,
        "the snapshot at {} misses a write acknowledged at {highest}",
        meta.index
    );
    assert_eq!(leader.metrics().snapshots_taken, 1);

    // The backup: a fresh state machine restored from the stream has every write
    // acknowledged before the call.
    let (info, mut data) = leader.open_snapshot().await.expect("open");
    assert!(info.meta.index >= meta.index, "{info:?} vs {meta:?}");
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes)
        .expect("the stream reads to its end and its CRC matches");
    assert_eq!(bytes.len() as u64, info.len);
    let restored = Arc::new(Mutex::new(KvState::default()));
    let mut fresh = Kv::new(restored.clone());
    fresh.restore(&bytes).expect("restore");
    let state = restored.lock().unwrap().clone();
    for a in tc.acked().iter().filter(|a| acked_before.contains(&a.index)) {
        assert_eq!(
            state.first_applied.get(&a.id),
            Some(&a.index),
            "write {} acknowledged at {} is in the backup",
            a.id,
            a.index
        );
    }

    writers.stop();
    writers.join().await;
    // Nothing applied since: the same snapshot (no new one) once the last is in.
    let again = leader.snapshot_now().await.expect("a snapshot");
    let same = leader.snapshot_now().await.expect("a snapshot");
    assert_eq!(again.index, same.index);
    assert!(again.index >= meta.index);

    // A follower takes its own.
    let follower = tc.node(&tc.others(leader.id())[0]);
    let f = follower.snapshot_now().await.expect("a follower's snapshot");
    assert!(f.index > 0);
    let st = follower.status().await.expect("status");
    assert!(st.first_index > 1, "the follower's log was compacted: {st:?}");
    tc.check().await;
}
