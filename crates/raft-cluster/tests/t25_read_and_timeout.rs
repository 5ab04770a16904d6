//! §6.4 Linearizable reads through ReadIndex, served by followers too; and a proposal
//! that cannot commit reports a timeout whose outcome is unknown.

mod support;

use std::time::Duration;

use raft_cluster::Error;
use raft_core::Role;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_follower_read_reflects_a_write_acknowledged_before_it() {
    let tc = TestCluster::start(3, config(0)).await;
    let client = tc.client();
    let writer = tc.new_writer();
    let key = format!("w{writer}");
    for seq in 1..=20 {
        client.put(Put::new(writer, seq)).await;
        // Ask a follower right away: it must not answer from a state that misses
        // the write (it confirms the leader's commit index first).
        let leader = tc.leader().await;
        let follower = tc.node(&tc.others(leader.id())[seq as usize % 2]);
        let state = loop {
            match follower.read(()).await {
                Ok(s) => break s,
                // No leader known right now (an election): ask again.
                Err(e) if e.is_not_leader() || e.is_timeout() => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("read on {}: {e}", follower.id()),
            }
        };
        assert!(
            state.data.get(&key).copied().unwrap_or(0) >= seq,
            "{} read {key} = {:?} after write {seq} was acknowledged",
            follower.id(),
            state.data.get(&key)
        );
    }
    tc.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t26_propose_that_cannot_commit_times_out() {
    // Without check-quorum an isolated leader keeps believing it leads, so the
    // proposal is taken, appended, and can never commit.
    let config = raft_cluster::RaftConfig {
        check_quorum: false,
        request_timeout: Duration::from_millis(500),
        ..config(0)
    };
    let tc = TestCluster::start(3, config).await;
    let leader = tc.leader().await;
    tc.net.isolate(leader.id());
    let r = leader.propose(Put::new(tc.new_writer(), 1)).await;
    let err = r.expect_err("an isolated leader cannot commit");
    assert!(err.is_timeout(), "expected a timeout, got {err}");
    assert!(matches!(err, Error::Timeout(_)));
    assert!(!err.is_not_leader());
    // The majority goes on; after healing, the old leader follows and agrees.
    let new = tc.leader_among(&tc.others(leader.id()), leader.view().term).await;
    tc.client()
        .only(&tc.others(leader.id()))
        .put(Put::new(tc.new_writer(), 1))
        .await;
    tc.net.heal();
    wait_until("the old leader to step down", || leader.view().role != Role::Leader).await;
    assert_ne!(new.id(), leader.id());
    tc.check().await;
}

/// `read_local` answers from the node's own state machine without asking anyone:
/// an isolated old leader still answers it (stale), while its linearizable `read`
/// refuses. This is exactly the anomaly `read` exists to prevent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t27_read_local_is_available_but_may_be_stale() {
    let tc = TestCluster::start(3, config(0)).await;
    let client = tc.client();
    let writer = tc.new_writer();
    let key = format!("w{writer}");
    client.put(Put::new(writer, 1)).await;
    let old = tc.leader().await;
    wait_until("the old leader applied the first write", || {
        tc.state(old.id()).data.get(&key).copied() == Some(1)
    })
    .await;
    tc.net.isolate(old.id());
    let new = tc.leader_among(&tc.others(old.id()), old.view().term).await;
    new.propose(Put::new(writer, 2))
        .await
        .expect("the majority side commits");

    let stale = old.read_local(()).await.expect("a local read needs nobody");
    assert_eq!(
        stale.data.get(&key).copied(),
        Some(1),
        "the cut-off node cannot know the new write"
    );
    assert!(
        old.read(()).await.is_err(),
        "a linearizable read on the cut-off node must not answer"
    );
    let fresh = new.read_local(()).await.unwrap();
    assert_eq!(fresh.data.get(&key).copied(), Some(2));

    tc.net.heal();
    wait_until("the old leader catches up", || {
        tc.state(old.id()).data.get(&key).copied() == Some(2)
    })
    .await;
    assert_eq!(old.read_local(()).await.unwrap().data.get(&key).copied(), Some(2));
    tc.check().await;
}
