//! Graceful shutdown and restart: each node recovers its state machine from its
//! latest snapshot plus the log after it, on its own (no peer reachable), then the
//! cluster carries on.

mod support;

use raft_core::NodeId;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t60_graceful_restart_recovers_state_from_snapshot_and_log() {
    let mut tc = TestCluster::start(3, config(40)).await;
    tc.spawn_writers(4, 60).join().await;
    let before = tc.check().await;
    for id in tc.running() {
        assert!(tc.node(&id).metrics().snapshots_taken > 0, "{id} took snapshots");
    }

    let ids = tc.running();
    tc.stop_all().await;
    // Every node alone: what it recovers comes from its own directory.
    let alone: Vec<Vec<NodeId>> = ids.iter().map(|id| vec![id.clone()]).collect();
    let groups: Vec<&[NodeId]> = alone.iter().map(Vec::as_slice).collect();
    tc.net.partition(&groups);
    for id in &ids {
        tc.restart(id).await;
    }
    for id in &ids {
        // Alone: a graceful shutdown wrote the commit index, and everything was
        // applied everywhere before it, so the snapshot plus the log after it give
        // back the whole state without any peer.
        wait_until(&format!("{id} to recover the state alone"), || tc.state(id) == before).await;
        let st = tc.node(id).status().await.expect("status");
        assert!(
            st.first_index > 1,
            "{id}: the log was compacted, so the state came from a snapshot"
        );
        let replayed = tc.node(id).metrics().applied;
        assert!(
            replayed < before.applied.len() as u64,
            "{id} replayed {replayed} entries: only those after its snapshot"
        );
    }

    tc.net.heal();
    tc.leader().await;
    tc.spawn_writers(2, 30).join().await;
    let after = tc.check().await;
    assert!(
        after.applied.starts_with(&before.applied),
        "the history before the restart is kept"
    );
}
