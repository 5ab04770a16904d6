//! A linearizable read in flight on a follower when the leader dies, over real
//! WebSocket connections on 127.0.0.1: it is answered once the next leader is
//! elected (the follower asks again), well before the request timeout, and never
//! reported as a timeout or an unknown outcome. The latency is printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use raft_cluster::{Cluster, Error, Faults, FaultyTransport, RaftConfig, RaftEvent};
use raft_core::{MemStorage, NodeId};
use raft_discovery::{NodeAddress, StaticServiceDiscovery};
use raft_transport_ws::{WsConfig, WsTransport};
use tokio::time::{sleep, Instant};

mod support;

use support::{raft_config, Log, Node, PATIENCE};

type WsCluster = Cluster<Log, MemStorage, FaultyTransport<WsTransport>>;

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Three nodes on real sockets; every node's sends go through `faults`.
async fn start(config: RaftConfig, faults: &Faults) -> WsCluster {
    let ports = free_ports(3);
    let ids: Vec<String> = (1..=3).map(|i| format!("node{i}")).collect();
    let discovery = Arc::new(StaticServiceDiscovery::new(
        ids.iter()
            .zip(&ports)
            .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p))),
    ));
    let addrs: BTreeMap<NodeId, u16> = ids.iter().zip(&ports).map(|(i, p)| (NodeId::new(i), *p)).collect();
    let faults = faults.clone();
    Cluster::start(
        ids,
        config,
        |_| Ok(MemStorage::default()),
        |_| Log::default(),
        move |id| {
            let listen = format!("127.0.0.1:{}", addrs[id]).parse().unwrap();
            let mut cfg = WsConfig::new(listen, "t90").with_token("tok");
            cfg.backoff_initial = Duration::from_millis(20);
            cfg.backoff_max = Duration::from_millis(300);
            FaultyTransport::new(
                id.clone(),
                WsTransport::new(id.clone(), cfg, discovery.clone()),
                faults.clone(),
            )
        },
    )
    .await
    .expect("cluster starts")
}

/// Proposes `v` on whoever leads until it is acknowledged.
async fn put(cluster: &WsCluster, v: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let leader = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
        match leader.propose(v).await {
            Ok(_) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "write {v} never acknowledged: {e}");
                sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// When one of `nodes` first hears of a leader other than `dead` (from their
/// events, which a node publishes as soon as it learns of the election, before
/// anything else that round).
fn watch_election(nodes: &[Node], dead: &NodeId) -> tokio::sync::mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for n in nodes {
        let mut events = n.events();
        let (tx, dead) = (tx.clone(), dead.clone());
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                if matches!(e, RaftEvent::LeaderElected { ref leader, .. } if *leader != dead) {
                    let _ = tx.send(Instant::now());
                    return;
                }
            }
        });
    }
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_a_read_in_flight_when_the_leader_dies_is_answered_by_the_next_leader() {
    let config = raft_config();
    let request_timeout = config.request_timeout;
    let faults = Faults::new();
    let mut cluster = start(config.clone(), &faults).await;
    let leader = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
    for v in 1..=5 {
        put(&cluster, v).await;
    }
    let want: Vec<u64> = (1..=5).collect();
    let dead = leader.id().clone();
    let survivors: Vec<Node> = cluster.nodes().filter(|n| n.id() != &dead).cloned().collect();
    let follower = survivors[0].clone();
    // Its answers and heartbeats never leave: the follower's ReadIndex reaches a
    // leader that will never answer it.
    for n in &survivors {
        faults.cut(&dead, n.id());
    }
    let mut elected = watch_election(&survivors, &dead);
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let f = survivors[i % 2].clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = f.read(()).await;
                (f.id().clone(), answer, started.elapsed(), Instant::now())
            })
        })
        .collect();
    sleep(Duration::from_millis(20)).await;
    // Abruptly: the node task is dropped where it stands, its transport with it (its
    // listener and connections close).
    cluster.kill(&dead).await;
    let killed_at = Instant::now();
    faults.heal();
    let mut done = Vec::new();
    for r in readers {
        let (id, answer, took, at) = r.await.expect("reader");
        match answer {
            Ok(state) => assert_eq!(state, want, "the read on {id} misses acknowledged writes"),
            Err(e @ Error::Timeout(_)) => panic!("a read reported an unknown outcome on {id}: {e}"),
            Err(e) => panic!("the read on {id} was not answered across the leader's death: {e}"),
        }
        assert!(took < request_timeout, "{took:?}");
        done.push((id, took, at));
    }
    let elected_at = elected.recv().await.expect("a survivor heard of the election");
    let new_leader = cluster.wait_for_leader(PATIENCE).await.expect("a new leader");
    assert_ne!(new_leader.id(), &dead);
    for (id, took, at) in &done {
        eprintln!(
            "ws: read on {id} across the leader's death: {took:?} in all, {:?} after the kill, {:?} after the next leader was elected (request timeout {request_timeout:?}, election timeout {:?})",
            at.saturating_duration_since(killed_at),
            at.saturating_duration_since(elected_at),
            config.election_timeout
        );
    }
    // The follower still serves linearizable reads with the new leader.
    assert_eq!(follower.read(()).await.expect("read after"), want);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_a_read_that_cannot_be_served_is_a_read_timeout_never_an_unknown_outcome() {
    let config = RaftConfig {
        request_timeout: Duration::from_secs(1),
        ..raft_config()
    };
    let faults = Faults::new();
    let mut cluster = start(config, &faults).await;
    let leader = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
    put(&cluster, 7).await;
    let follower = cluster
        .nodes()
        .find(|n| n.id() != leader.id())
        .cloned()
        .expect("a follower");
    // The follower alone, both ways: no leader can confirm its read.
    let others: Vec<NodeId> = cluster
        .nodes()
        .map(|n| n.id().clone())
        .filter(|id| id != follower.id())
        .collect();
    faults.partition(&[&[follower.id().clone()], &others]);
    let started = Instant::now();
    let answer = follower.read(()).await;
    let took = started.elapsed();
    match &answer {
        Err(e @ Error::ReadTimeout(_)) => {
            assert!(e.is_timeout());
            assert!(!e.to_string().contains("unknown"), "{e}");
        }
        Err(Error::Timeout(_)) => panic!("a read reported as an unknown outcome: {answer:?}"),
        other => panic!("an isolated follower answered a linearizable read: {other:?}"),
    }
    eprintln!("ws: the isolated follower's read gave up after {took:?}");
    // And it is served again once the partition heals.
    faults.heal();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match follower.read(()).await {
            Ok(state) => {
                assert_eq!(state, vec![7]);
                break;
            }
            Err(e) => {
                assert!(!matches!(e, Error::Timeout(_)), "{e}");
                assert!(Instant::now() < deadline, "never served after the heal: {e}");
                sleep(Duration::from_millis(20)).await;
            }
        }
    }
    cluster.stop().await;
}
