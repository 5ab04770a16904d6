//! Graceful shutdown and restart: each node recovers its state machine from its own
//! latest snapshot plus the log after it (alone as far as the commit index it
//! persisted, the rest once a leader confirms the commit), then the cluster carries
//! on.

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
        // Alone, a node restores its latest snapshot and applies its log up to the
        // commit index it persisted: a prefix of the history, never anything else.
        wait_until(&format!("{id} to restore its snapshot"), || {
            !tc.state(id).applied.is_empty()
        })
        .await;
        let alone = tc.state(id);
        assert!(
            before.applied.starts_with(&alone.applied),
            "{id} recovered a history that is not a prefix"
        );
        let st = tc.node(id).status().await.expect("status");
        assert!(
            st.first_index > 1,
            "{id}: the log was compacted, so the state came from a snapshot"
        );
        eprintln!(
            "{id} alone: {} of {} applies recovered (snapshot at {}, commit {})",
            alone.applied.len(),
            before.applied.len(),
            st.first_index - 1,
            st.commit
        );
    }

    // With a leader, each node applies the rest from its own log: only the entries
    // after its snapshot, not the whole history again.
    tc.net.heal();
    tc.leader().await;
    for id in &ids {
        wait_until(&format!("{id} to recover the whole state"), || tc.state(id) == before).await;
        let replayed = tc.node(id).metrics().applied;
        assert!(
            replayed < before.applied.len() as u64,
            "{id} replayed {replayed} entries: only those after its snapshot"
        );
    }

    tc.spawn_writers(2, 30).join().await;
    let after = tc.check().await;
    assert!(
        after.applied.starts_with(&before.applied),
        "the history before the restart is kept"
    );
}
