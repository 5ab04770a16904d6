//! §5.2 Leader election on real files: one leader that every node agrees on, and the
//! node's events (leader elected, role changed, entry applied) as they happen.

mod support;

use std::time::Duration;

use raft_cluster::RaftEvent;
use raft_core::Role;
use support::*;
use tokio::sync::broadcast;

async fn elect(n: usize) {
    let tc = TestCluster::start(n, config(0)).await;
    let leader = tc.leader().await;
    let term = leader.view().term;
    wait_until("every node to follow the leader", || {
        tc.running().iter().all(|id| {
            let v = tc.node(id).view();
            v.term == term && v.leader.as_ref() == Some(leader.id())
        })
    })
    .await;
    let leaders = tc
        .running()
        .iter()
        .filter(|id| tc.node(id).view().role == Role::Leader)
        .count();
    assert_eq!(leaders, 1);
    tc.client().put(Put::new(tc.new_writer(), 1)).await;
    tc.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_three_nodes_elect_one_leader() {
    elect(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_five_nodes_elect_one_leader() {
    elect(5).await;
}

/// Receives events until `pred` matches one; panics after the deadline.
async fn expect_event(rx: &mut broadcast::Receiver<RaftEvent>, what: &str, pred: impl Fn(&RaftEvent) -> bool) {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed before {what}"),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no {what} event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t11_events_report_applied_entries_role_changes_and_new_leaders() {
    let tc = TestCluster::start(3, config(0)).await;
    let old = tc.leader().await;
    let mut rx: Vec<_> = tc
        .running()
        .iter()
        .map(|id| (id.clone(), tc.node(id).events()))
        .collect();

    // OnEntryApplied: every node reports the acknowledged entry.
    let index = tc.client().put(Put::new(tc.new_writer(), 1)).await;
    for (id, rx) in &mut rx {
        expect_event(
            rx,
            &format!("EntryApplied({index}) on {id}"),
            |e| matches!(e, RaftEvent::EntryApplied { index: i, .. } if *i == index),
        )
        .await;
    }

    // OnStateChanged / OnLeaderElected: hand leadership to a follower (retried: a
    // transfer can lapse on a busy machine) and watch every node learn of it.
    let target = tc.others(old.id())[0].clone();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tc.node(&target).view().role != Role::Leader {
        assert!(
            tokio::time::Instant::now() < deadline,
            "leadership never moved to {target}"
        );
        if let Some(l) = tc.cluster.leader().cloned() {
            let _ = l.transfer_leadership(target.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let term = tc.node(&target).view().term;
    for (id, rx) in &mut rx {
        if *id == target {
            expect_event(
                rx,
                "StateChanged(Leader) on the new leader",
                |e| matches!(e, RaftEvent::StateChanged { role: Role::Leader, term: t } if *t == term),
            )
            .await;
        }
        if id == old.id() {
            expect_event(rx, "StateChanged(Follower) on the old leader", |e| {
                matches!(
                    e,
                    RaftEvent::StateChanged {
                        role: Role::Follower,
                        ..
                    }
                )
            })
            .await;
        }
        expect_event(
            rx,
            &format!("LeaderElected({target}) on {id}"),
            |e| matches!(e, RaftEvent::LeaderElected { leader, term: t } if *leader == target && *t == term),
        )
        .await;
    }
    let index = tc.client().put(Put::new(tc.new_writer(), 1)).await;
    for (id, rx) in &mut rx {
        expect_event(
            rx,
            &format!("EntryApplied({index}) in term {term} on {id}"),
            |e| matches!(e, RaftEvent::EntryApplied { index: i, term: t } if *i == index && *t == term),
        )
        .await;
    }
    tc.check().await;
}
