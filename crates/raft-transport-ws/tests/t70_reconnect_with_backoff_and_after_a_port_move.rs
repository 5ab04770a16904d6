//! Reconnection: a peer that is down (not even in discovery, then registered but not
//! listening) when the cluster starts is reached once it comes up, through the
//! exponential backoff; and a node that restarts on a new port is found again as soon
//! as its discovery entry changes (`register_node`), while its old port stays dead.

mod support;

use std::sync::Arc;
use std::time::Duration;

use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_storage::{FileStorage, Options};
use support::*;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_down_at_first_is_reached_when_it_comes_up_and_a_moved_node_is_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let voters = ids(3);
    let storage = |id: &str| FileStorage::open(dir.path().join(id), Options::default()).unwrap();
    let start = |id: &'static str| {
        let discovery = discovery.clone();
        let voters = voters.clone();
        let storage = storage(id);
        async move {
            let mut cfg = ws_config("reconnect");
            cfg.backoff_initial = Duration::from_millis(20);
            cfg.backoff_max = Duration::from_millis(400);
            start_node_with(id, &voters, raft_config(), cfg, &discovery, storage).await
        }
    };

    // node3 is down: first unknown to discovery, then registered at a port where
    // nothing listens yet. node1 and node2 make a quorum and commit without it.
    let (n1, _t1) = start("node1").await;
    let (n2, _t2) = start("node2").await;
    let mut nodes = vec![n1, n2];
    let mut want = Vec::new();
    for v in 0..20u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    let parked = dead_ports(1)[0];
    discovery
        .register_node(&"node3".into(), NodeAddress::new("127.0.0.1", parked))
        .await
        .unwrap();
    for v in 20..40u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    // Let the leader fail against the dead address long enough for the backoff to
    // reach its cap.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // node3 comes up (on a port of its own choosing, which it registers): the leader
    // reaches it within a few backoff periods and it catches up.
    let up_at = Instant::now();
    let (n3, t3) = start("node3").await;
    nodes.push(n3.clone());
    converge(&nodes, &want).await;
    let took = up_at.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "node3 was reached {took:?} after it came up (backoff is capped at 400 ms)"
    );

    // node3 moves: it stops, and restarts from its data directory on a new port, which
    // it registers in discovery.
    let old = t3.local_addr().unwrap();
    n3.shutdown().await;
    nodes.pop();
    for v in 40..60u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    discovery.unregister_node(&"node3".into()).await.unwrap();
    // Hold the old port while node3 picks its new one, so that it is really new.
    let hold = std::net::TcpListener::bind(old).ok();
    let (n3, t3) = start("node3").await; // registers its new address
    drop(hold);
    let new = t3.local_addr().unwrap();
    assert_ne!(old.port(), new.port(), "node3 moved to a new port");
    assert_eq!(
        discovery.get_node_address(&"node3".into()).await.unwrap().port,
        new.port()
    );
    nodes.push(n3);
    for v in 60..80u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    converge(&nodes, &want).await;
    assert!(
        tokio::net::TcpStream::connect(old).await.is_err(),
        "the old port is no longer served"
    );

    // Everybody talks to everybody at the new addresses: with node1 gone, node2 and
    // the moved node3 still make a quorum together.
    let n1 = nodes.remove(0);
    n1.shutdown().await;
    for v in 80..100u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    converge(&nodes, &want).await;
    for n in &nodes {
        n.shutdown().await;
    }
}
