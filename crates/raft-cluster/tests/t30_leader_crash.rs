//! A leader crashes (its task is dropped mid-flight, nothing flushed): the others
//! elect a new one and keep committing; the crashed node restarts from its data
//! directory and catches up, from the log or, when the entries it misses were
//! compacted, through a snapshot.

mod support;

use raft_cluster::RaftEvent;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_killed_leader_is_replaced_and_catches_up_from_the_log_after_restart() {
    let mut tc = TestCluster::start(3, config(0)).await;
    let writers = tc.spawn_writers(4, 150);
    tc.wait_acked(100).await;

    let old = tc.leader().await;
    let old_term = old.view().term;
    tc.kill(old.id()).await;
    // A handle to the killed node must not keep claiming it runs (and leads).
    assert!(
        !old.view().running,
        "killed node still reports running: {:?}",
        old.view()
    );
    assert!(matches!(old.status().await, Err(raft_cluster::Error::Stopped)));
    let new = tc.leader_among(&tc.running(), old_term).await;
    assert_ne!(new.id(), old.id());
    let acked = tc.acked().len();
    tc.wait_acked(acked + 100).await;

    let restarted = tc.restart(old.id()).await;
    let writers_done = writers.join().await;
    assert_eq!(writers_done, 600);
    let state = tc.check().await;
    assert_eq!(tc.state(restarted.id()), state);
    eprintln!(
        "directory lock retries on restart: {}",
        tc.lock_retries.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t31_restarted_node_catches_up_through_a_snapshot_after_compaction() {
    // Small chunks: the snapshot (a few KiB) crosses the network in many pieces.
    let config = raft_cluster::RaftConfig {
        snapshot_chunk_bytes: 512,
        ..config(64)
    };
    let mut tc = TestCluster::start(3, config).await;
    tc.spawn_writers(4, 30).join().await;

    let old = tc.leader().await;
    let old_term = old.view().term;
    let behind = old.status().await.expect("status").last_index;
    tc.kill(old.id()).await;
    tc.leader_among(&tc.running(), old_term).await;

    // Write until the new leader has compacted past everything the dead node has.
    let writers = tc.spawn_writers(4, 1000);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let st = tc.leader_status().await;
        if st.first_index > behind + 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader never compacted past {behind}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    writers.stop();
    writers.join().await;

    // Restart it cut off, so its event stream is subscribed before the leader can
    // reach it; then let it in.
    tc.net.isolate(old.id());
    let restarted = tc.restart(old.id()).await;
    let mut events = restarted.events();
    tc.net.heal();
    let installed = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(RaftEvent::SnapshotInstalled { index }) => return index,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("the restarted node installs the leader's snapshot");
    assert!(
        installed > behind,
        "snapshot at {installed} covers what it missed after {behind}"
    );

    // It keeps up with new writes afterwards, through the log.
    tc.spawn_writers(2, 20).join().await;
    let state = tc.check().await;
    assert_eq!(tc.state(restarted.id()), state);
}
