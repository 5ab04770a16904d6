//! §5.3 Log replication on real files: many concurrent clients, every acknowledged
//! write applied exactly once, in the same order, on every node; the leader's status
//! shows each follower's progress.

mod support;

use raft_core::{ProgressState, Role};
use support::*;

async fn thousand_proposals_from_eight_clients(n: usize) {
    let tc = TestCluster::start(n, config(0)).await;
    let acknowledged = tc.spawn_writers(8, 125).join().await;
    assert_eq!(acknowledged, 1000);
    let state = tc.check().await;
    assert!(state.first_applied.len() >= 1000);
    // Each node applied each index once (check_history), and every node holds the
    // same history (check): so every acknowledged write took effect exactly once on
    // every node.
    for id in tc.running() {
        assert_eq!(tc.state(&id), state, "{id} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_three_nodes_1000_proposals_from_8_clients_applied_exactly_once() {
    thousand_proposals_from_eight_clients(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_five_nodes_1000_proposals_from_8_clients_applied_exactly_once() {
    thousand_proposals_from_eight_clients(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t21_leader_status_shows_per_peer_progress() {
    let tc = TestCluster::start(3, config(0)).await;
    tc.spawn_writers(2, 20).join().await;
    let last = tc.acked().iter().map(|a| a.index).max().expect("acks");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let st = loop {
        let st = tc.leader_status().await;
        if st.progress.values().all(|p| p.match_index >= last) {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "followers never matched {last}: {st:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(st.role, Role::Leader);
    assert!(
        st.commit >= last && st.applied >= last && st.last_index >= last,
        "{st:?}"
    );
    let peers: Vec<_> = st.progress.keys().cloned().collect();
    assert_eq!(peers, tc.running(), "progress for every member");
    for (id, p) in &st.progress {
        assert!(p.next_index > p.match_index, "{id}: {p:?}");
        if *id != st.id {
            assert_eq!(
                p.state,
                ProgressState::Replicate,
                "{id} is being replicated to normally"
            );
        }
    }
    // A follower reports no progress: only the leader tracks it.
    let follower = tc.others(&st.id)[0].clone();
    let fst = tc.node(&follower).status().await.expect("status");
    assert_ne!(fst.role, Role::Leader);
    assert!(fst.progress.is_empty(), "{fst:?}");
    tc.check().await;
}
