//! Crash after crash while clients write and nodes snapshot: leaders and followers
//! are killed mid-flight and restarted from disk, over and over. No acknowledged write
//! is lost and every node ends with the same history.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t35_nodes_killed_and_restarted_repeatedly_under_load() {
    let mut tc = TestCluster::start(3, config(50)).await;
    let writers = tc.spawn_writers(6, 100_000);
    tc.wait_acked(50).await;
    for round in 0..6 {
        let leader = tc.leader().await;
        // Alternate: the leader, then a follower.
        let victim = if round % 2 == 0 {
            leader.id().clone()
        } else {
            tc.others(leader.id())[0].clone()
        };
        tc.kill(&victim).await;
        let acked = tc.acked().len();
        tc.wait_acked(acked + 40).await;
        tc.restart(&victim).await;
        let acked = tc.acked().len();
        tc.wait_acked(acked + 40).await;
    }
    writers.stop();
    writers.join().await;
    tc.check().await;
}
