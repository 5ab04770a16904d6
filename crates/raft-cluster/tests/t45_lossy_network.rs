//! A lossy, slow network: messages dropped at random and delayed (so also
//! reordered). Raft retries; every acknowledged write still lands exactly once.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t45_writes_survive_dropped_and_delayed_messages() {
    let tc = TestCluster::start(3, config(100)).await;
    tc.net.set_drop_rate(0.05, 0x5eed);
    tc.net.set_delay(Duration::from_millis(2));
    assert_eq!(tc.spawn_writers(4, 60).join().await, 240);
    tc.net.heal();
    tc.check().await;
}
