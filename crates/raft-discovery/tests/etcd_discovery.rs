//! etcd discovery against a real `etcd` (Debian's etcd-server), started by each
//! test on free loopback ports with a temporary data directory. Without etcd
//! installed these tests fail, saying how to install it.

use std::time::{Duration, Instant};

use raft_core::NodeId;
use raft_discovery::testing::EtcdServer;
use raft_discovery::{DiscoveryError, EtcdConfig, EtcdServiceDiscovery, NodeAddress, ServiceDiscovery};

fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

async fn etcd() -> EtcdServer {
    EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"))
}

/// Polls `check` until it holds, or fails with `what` after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn address_of(d: &EtcdServiceDiscovery, node: &str) -> Option<NodeAddress> {
    d.get_node_address(&id(node)).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_list_and_unregister_through_a_real_etcd() {
    let server = etcd().await;
    let a = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    a.register_node(&id("node1"), NodeAddress::new("127.0.0.1", 5001))
        .await
        .unwrap();
    a.register_node(&id("node2"), NodeAddress::new("::1", 5002))
        .await
        .unwrap();
    assert_eq!(
        a.get_node_address(&id("node2")).await.unwrap(),
        NodeAddress::new("::1", 5002)
    );
    // Another process (a fresh instance) lists the prefix.
    let b = EtcdServiceDiscovery::new(server.config("easyraft/")).unwrap();
    let all = b.get_all_node_addresses().await.unwrap();
    assert_eq!(all.keys().map(NodeId::as_str).collect::<Vec<_>>(), ["node1", "node2"]);
    // Other prefixes are other clusters.
    let other = EtcdServiceDiscovery::new(server.config("/other")).unwrap();
    assert!(other.get_all_node_addresses().await.unwrap().is_empty());
    // Unregister revokes the lease: the key is gone at once, for everyone.
    a.unregister_node(&id("node1")).await.unwrap();
    b.refresh().await.unwrap();
    assert!(matches!(
        b.get_node_address(&id("node1")).await,
        Err(DiscoveryError::UnknownNode(_))
    ));
    assert!(matches!(
        a.unregister_node(&id("node1")).await,
        Err(DiscoveryError::UnknownNode(_))
    ));
    // A node registered elsewhere can be removed too.
    b.unregister_node(&id("node2")).await.unwrap();
    a.refresh().await.unwrap();
    assert!(a.get_all_node_addresses().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_keeps_the_local_view_current_without_refresh() {
    let server = etcd().await;
    let a = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    let b = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    assert!(b.get_all_node_addresses().await.unwrap().is_empty());
    eventually(Duration::from_secs(5), "b's watch opens", || async { b.is_live() }).await;
    // While live, b answers from its view only: changes arrive through the watch.
    a.register_node(&id("node3"), NodeAddress::new("127.0.0.1", 5003))
        .await
        .unwrap();
    eventually(Duration::from_secs(3), "b sees node3", || async {
        address_of(&b, "node3").await == Some(NodeAddress::new("127.0.0.1", 5003))
    })
    .await;
    // The node moves (re-registers on a new port): b follows.
    a.register_node(&id("node3"), NodeAddress::new("127.0.0.1", 6003))
        .await
        .unwrap();
    eventually(Duration::from_secs(3), "b sees node3's new port", || async {
        address_of(&b, "node3").await.map(|a| a.port) == Some(6003)
    })
    .await;
    a.unregister_node(&id("node3")).await.unwrap();
    eventually(Duration::from_secs(3), "b sees node3 leave", || async {
        address_of(&b, "node3").await.is_none()
    })
    .await;
    assert!(b.is_live());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_registration_expires_with_its_lease() {
    let server = etcd().await;
    let ttl = Duration::from_secs(5); // generous: keep-alives on a loaded 2-core CI machine can slip a second or two
    let watcher = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    let node = EtcdServiceDiscovery::new(server.config("/easyraft").with_lease_ttl(ttl)).unwrap();
    node.register_node(&id("node1"), NodeAddress::new("127.0.0.1", 5001))
        .await
        .unwrap();
    eventually(Duration::from_secs(3), "the watcher sees node1", || async {
        address_of(&watcher, "node1").await.is_some()
    })
    .await;
    // Kept alive in the background well past its TTL.
    tokio::time::sleep(ttl + Duration::from_secs(1)).await;
    assert!(
        address_of(&watcher, "node1").await.is_some(),
        "the lease was not kept alive"
    );
    // The node dies: no unregister, its keep-alive just stops.
    drop(node);
    let died = Instant::now();
    eventually(ttl + Duration::from_secs(4), "node1 expires", || async {
        address_of(&watcher, "node1").await.is_none()
    })
    .await;
    assert!(died.elapsed() >= ttl / 2, "gone too early: {:?}", died.elapsed());
}

/// Regression: `register_node` and the background renewal used to race on a
/// registration that had no lease yet: both granted one, the later put owned the
/// key, and if that lease was the one forgotten nobody renewed it and the key
/// expired under a live node (seen in CI). Registrations made while the first
/// session is opening must all outlive several TTLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_racing_the_first_renewal_all_stay_alive() {
    let server = etcd().await;
    let ttl = Duration::from_secs(2);
    // Many fresh discoveries, each registering at once (which also starts its
    // background session), so the two paths overlap in many different orders.
    let mut nodes = Vec::new();
    let mut registering = Vec::new();
    for n in 0..40u16 {
        let node =
            std::sync::Arc::new(EtcdServiceDiscovery::new(server.config("/easyraft").with_lease_ttl(ttl)).unwrap());
        nodes.push(node.clone());
        registering.push(tokio::spawn(async move {
            node.register_node(&id(&format!("node{n}")), NodeAddress::new("127.0.0.1", 7000 + n))
                .await
        }));
    }
    for r in registering {
        r.await.unwrap().unwrap();
    }
    tokio::time::sleep(ttl * 3).await;
    let watcher = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    let all = watcher.get_all_node_addresses().await.unwrap();
    let missing: Vec<String> = (0..40)
        .map(|n| format!("node{n}"))
        .filter(|name| !all.contains_key(&id(name)))
        .collect();
    assert!(missing.is_empty(), "expired while registered and alive: {missing:?}");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_restarted_under_a_running_registration_gets_it_back() {
    let mut server = etcd().await;
    let node = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    node.register_node(&id("node1"), NodeAddress::new("127.0.0.1", 5001))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the node's watch opens", || async {
        node.is_live()
    })
    .await;

    // A crash and restart with its data: the registration is still there and the
    // discovery reconnects on its own.
    server.kill();
    eventually(Duration::from_secs(3), "the loss is noticed", || async {
        !node.is_live()
    })
    .await;
    // While etcd is down, reads are answered from the last view (within the grace period).
    assert_eq!(address_of(&node, "node1").await.map(|a| a.port), Some(5001));
    server.restart(false).await.unwrap();
    eventually(Duration::from_secs(10), "reconnected", || async { node.is_live() }).await;

    // Rebuilt from scratch (all keys and leases lost): the discovery re-registers.
    server.restart(true).await.unwrap();
    let fresh = EtcdServiceDiscovery::new(server.config("/easyraft")).unwrap();
    eventually(
        Duration::from_secs(10),
        "node1 re-registered in the new etcd",
        || async {
            fresh.refresh().await.is_ok()
                && address_of(&fresh, "node1").await == Some(NodeAddress::new("127.0.0.1", 5001))
        },
    )
    .await;
    eventually(Duration::from_secs(10), "the node's own watch is back", || async {
        node.is_live()
    })
    .await;
    // And its lease is renewed there: it survives past the TTL.
    tokio::time::sleep(server.config("x").lease_ttl + Duration::from_secs(1)).await;
    fresh.refresh().await.unwrap();
    assert!(address_of(&fresh, "node1").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_etcd_gives_typed_errors_within_the_timeout_never_a_hang() {
    let timeout = Duration::from_millis(400);
    let bound = timeout + Duration::from_millis(600);
    // Nobody listening: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused =
        EtcdServiceDiscovery::new(EtcdConfig::new(format!("127.0.0.1:{port}"), "/easyraft").with_timeout(timeout))
            .unwrap();
    let started = Instant::now();
    assert!(matches!(
        refused.get_all_node_addresses().await,
        Err(DiscoveryError::Unreachable { backend: "etcd", .. })
    ));
    assert!(started.elapsed() < bound);
    // A black hole: accepts connections, never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let d =
        EtcdServiceDiscovery::new(EtcdConfig::new(hole_addr.to_string(), "/easyraft").with_timeout(timeout)).unwrap();
    let n1 = id("node1");
    let ops: Vec<(&str, Result<(), DiscoveryError>)> = vec![
        ("get", d.get_node_address(&n1).await.map(|_| ())),
        ("list", d.get_all_node_addresses().await.map(|_| ())),
        ("refresh", d.refresh().await),
        ("register", d.register_node(&n1, NodeAddress::new("h", 1)).await),
        ("unregister", d.unregister_node(&n1).await),
    ];
    for (op, result) in ops {
        match result {
            Err(DiscoveryError::Timeout {
                backend: "etcd",
                after,
                server,
            }) => {
                assert_eq!((after, server), (timeout, hole_addr.to_string()), "{op}");
            }
            other => panic!("{op}: expected a timeout, got {other:?}"),
        }
    }
    let started = Instant::now();
    let _ = d.get_node_address(&n1).await;
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());

    // A real etcd killed under a live discovery: errors, not hangs.
    let mut server = etcd().await;
    let live = EtcdServiceDiscovery::new(server.config("/easyraft").with_timeout(timeout)).unwrap();
    live.refresh().await.unwrap();
    server.kill();
    let started = Instant::now();
    assert!(live.register_node(&n1, NodeAddress::new("h", 1)).await.is_err());
    assert!(live.refresh().await.is_err());
    assert!(started.elapsed() < 2 * bound, "took {:?}", started.elapsed());
}
