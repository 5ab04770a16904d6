//! §4 (dissertation) Membership changes while clients write: grow 3 -> 5 through
//! learners, remove the leader itself, replace a dead node.

mod support;

use raft_core::{MembershipChange, NodeId, Role};
use support::*;

fn node(name: &str) -> NodeId {
    NodeId::new(name)
}

/// Starts `id` empty, adds it as a learner and waits until it has caught up.
async fn add_learner(tc: &mut TestCluster, id: &NodeId) {
    tc.add_node(id).await;
    tc.change_membership(vec![MembershipChange::AddLearner(id.clone())], |m| {
        m.learners.contains(id)
    })
    .await;
    tc.wait_caught_up(id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t50_grow_from_three_to_five_voters_through_learners() {
    let mut tc = TestCluster::start(3, config(64)).await;
    let writers = tc.spawn_writers(4, 1000);
    tc.wait_acked(100).await;

    let (n4, n5) = (node("node4"), node("node5"));
    add_learner(&mut tc, &n4).await;
    add_learner(&mut tc, &n5).await;
    let st = tc.leader_status().await;
    assert!(st.membership.learners.contains(&n4) && !st.membership.is_voter(&n4));
    assert_eq!(tc.node(&n4).view().role, Role::Follower, "a learner never campaigns");

    tc.change_membership(
        vec![
            MembershipChange::PromoteLearner(n4.clone()),
            MembershipChange::PromoteLearner(n5.clone()),
        ],
        |m| m.voters.len() == 5 && m.learners.is_empty(),
    )
    .await;
    let acked = tc.acked().len();
    tc.wait_acked(acked + 100).await;
    writers.stop();
    writers.join().await;

    let st = tc.leader_status().await;
    assert_eq!(st.membership.voters.len(), 5, "{:?}", st.membership);
    let state = tc.check().await;
    assert_eq!(tc.state(&n5), state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t51_remove_the_leader() {
    let mut tc = TestCluster::start(3, config(0)).await;
    let writers = tc.spawn_writers(4, 1000);
    tc.wait_acked(60).await;

    let old = tc.leader().await;
    let gone = old.id().clone();
    tc.change_membership(vec![MembershipChange::Remove(gone.clone())], |m| !m.contains(&gone))
        .await;
    wait_until("the removed leader to step down", || old.view().role != Role::Leader).await;
    let new = tc.leader_among(&tc.others(&gone), 0).await;
    assert_ne!(*new.id(), gone);
    tc.stop_node(&gone).await;

    let acked = tc.acked().len();
    tc.wait_acked(acked + 100).await;
    writers.stop();
    writers.join().await;
    let st = tc.leader_status().await;
    assert_eq!(st.membership.voters.len(), 2);
    assert!(!st.membership.contains(&gone));
    tc.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t52_replace_a_dead_node() {
    let mut tc = TestCluster::start(3, config(64)).await;
    let writers = tc.spawn_writers(4, 1000);
    tc.wait_acked(60).await;

    let leader = tc.leader().await;
    let dead = tc.others(leader.id())[0].clone();
    tc.kill(&dead).await;
    let acked = tc.acked().len();
    tc.wait_acked(acked + 60).await;

    let fresh = node("node6");
    add_learner(&mut tc, &fresh).await;
    tc.change_membership(
        vec![
            MembershipChange::PromoteLearner(fresh.clone()),
            MembershipChange::Remove(dead.clone()),
        ],
        |m| m.is_voter(&fresh) && !m.contains(&dead),
    )
    .await;
    let acked = tc.acked().len();
    tc.wait_acked(acked + 60).await;
    writers.stop();
    writers.join().await;

    let st = tc.leader_status().await;
    assert_eq!(st.membership.voters.len(), 3, "{:?}", st.membership);
    let state = tc.check().await;
    assert_eq!(tc.state(&fresh), state);
}

/// `Cluster::wait_for_leader` asks a majority of the leader's *voters*: two
/// caught-up learners that follow the leader do not make up for two dead voters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t54_wait_for_leader_counts_voters_not_learners() {
    let mut tc = TestCluster::start(3, config(0)).await;
    let (n4, n5) = (node("node4"), node("node5"));
    add_learner(&mut tc, &n4).await;
    add_learner(&mut tc, &n5).await;
    let leader = tc.leader().await.id().clone();
    let dead: Vec<NodeId> = ids(3).into_iter().filter(|id| *id != leader).collect();
    for id in &dead {
        tc.kill(id).await;
    }
    // Five running nodes would include three that follow the leader, but only one
    // of the three voters is alive: no leader can be confirmed.
    let waited = tc.cluster.wait_for_leader(tc.config.election_timeout * 3).await;
    assert!(
        waited.is_err(),
        "a leader was confirmed by learners: {:?}",
        waited.map(|h| h.id().clone())
    );
    // One voter back is a majority of the voters again.
    tc.restart(&dead[0]).await;
    let l = tc.leader().await;
    assert!(ids(3).contains(l.id()), "{} leads but is not a voter", l.id());
}
