//! Partitions on the in-memory network: the side without a majority cannot commit and
//! its clients get errors, the majority side keeps going, and after healing every node
//! converges. An old leader cut off in a minority never acknowledges a write that the
//! majority later overwrites.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use raft_core::{NodeId, Role};
use support::*;

/// Proposes to `nodes` in turn until `stop`; returns how each attempt failed.
fn spawn_minority_client(
    tc: &TestCluster,
    nodes: Vec<Node>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<&'static str, usize>> {
    let writer = tc.new_writer();
    tokio::spawn(async move {
        let mut outcomes = BTreeMap::new();
        let mut seq = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            seq += 1;
            let node = &nodes[seq as usize % nodes.len()];
            let how = expect_refused(node.propose(Put::new(writer, seq)).await);
            *outcomes.entry(how).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        outcomes
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_minority_cannot_commit_majority_continues_then_all_converge() {
    let config = raft_cluster::RaftConfig {
        request_timeout: Duration::from_millis(800),
        ..config(0)
    };
    let tc = TestCluster::start(5, config).await;
    tc.spawn_writers(4, 25).join().await;

    let old = tc.leader().await;
    let old_term = old.view().term;
    let others = tc.others(old.id());
    let minority: Vec<NodeId> = vec![old.id().clone(), others[0].clone()];
    let majority: Vec<NodeId> = others[1..].to_vec();
    let last_before = old.status().await.expect("status").last_index;
    tc.net.partition(&[&minority, &majority]);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let minority_nodes: Vec<Node> = minority.iter().map(|id| tc.node(id)).collect();
    let refused: Vec<_> = (0..3)
        .map(|_| spawn_minority_client(&tc, minority_nodes.clone(), stop.clone()))
        .collect();

    tc.leader_among(&majority, old_term).await;
    let majority_writers = tc.spawn_writers_with(tc.client().only(&majority), 4, 50);
    assert_eq!(majority_writers.join().await, 200, "the majority keeps committing");

    // Nothing appended on the minority side during the partition committed there.
    for id in &minority {
        let st = tc.node(id).status().await.expect("status");
        assert!(
            st.commit <= last_before,
            "{id} committed {} > {last_before} without a quorum",
            st.commit
        );
    }
    // Let the minority clients see their last proposals fail, then heal.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in refused {
        for (how, n) in r.await.expect("minority client") {
            *outcomes.entry(how).or_default() += n;
        }
    }
    eprintln!("minority outcomes: {outcomes:?}");
    assert!(outcomes.values().sum::<usize>() > 0);

    tc.net.heal();
    tc.spawn_writers(2, 20).join().await;
    let state = tc.check().await;
    for id in tc.running() {
        assert_eq!(tc.state(&id), state, "{id} converged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t41_old_leader_in_minority_never_acknowledges_a_lost_write() {
    // The request timeout outlasts the partition, so the old leader's proposals are
    // still waiting when it learns their entries were overwritten.
    let config = raft_cluster::RaftConfig {
        request_timeout: std::time::Duration::from_secs(20),
        ..config(0)
    };
    let tc = TestCluster::start(3, config).await;
    tc.spawn_writers(2, 20).join().await;
    let old = tc.leader().await;
    let old_term = old.view().term;
    tc.net.isolate(old.id());

    // Proposals the old leader takes (or refuses, once it notices it lost its quorum).
    let writer = tc.new_writer();
    let pending: Vec<_> = (1..=10)
        .map(|seq| {
            let old = old.clone();
            tokio::spawn(async move { old.propose(Put::new(writer, seq)).await })
        })
        .collect();

    let majority = tc.others(old.id());
    tc.leader_among(&majority, old_term).await;
    tc.spawn_writers_with(tc.client().only(&majority), 2, 30).join().await;
    wait_until("the old leader to step down (check-quorum)", || {
        old.view().role != Role::Leader
    })
    .await;
    tc.net.heal();

    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for p in pending {
        *outcomes
            .entry(expect_refused(p.await.expect("proposal task")))
            .or_default() += 1;
    }
    eprintln!("old leader's proposals: {outcomes:?}");
    let state = tc.check().await;
    for seq in 1..=10 {
        assert!(
            !state.first_applied.contains_key(&(writer * 1_000_000 + seq)),
            "a refused write was applied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t42_one_way_cut_from_the_leader_moves_leadership() {
    let tc = TestCluster::start(3, config(0)).await;
    let writers = tc.spawn_writers(4, 100);
    tc.wait_acked(60).await;
    let old = tc.leader().await;
    let old_term = old.view().term;
    // The leader still hears everyone but nobody hears it.
    for other in tc.others(old.id()) {
        tc.net.cut(old.id(), &other);
    }
    let new = tc.leader_among(&tc.others(old.id()), old_term).await;
    let acked = tc.acked().len();
    tc.wait_acked(acked + 60).await;
    tc.net.heal();
    assert_eq!(writers.join().await, 400);
    tc.check().await;
    assert_ne!(new.id(), old.id());
}
