//! A linearizable read in flight on a follower when the leader dies, over the real
//! JSON-RPC transport on 127.0.0.1, through `RaftHandle::read` and through a
//! client's HTTP JSON-RPC call on the follower's API port (a jsonrpsee server built on
//! the node's handle, beside the transport's Raft port): answered once the next leader
//! is elected, well before the request timeout, never reported as a timeout or an
//! unknown outcome. The latency is printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::types::ErrorObject;
use jsonrpsee::RpcModule;
use raft_cluster::{Cluster, Error, Faults, FaultyTransport, RaftConfig, RaftEvent, RaftHandle};
use raft_core::{MemStorage, NodeId};
use raft_discovery::{NodeAddress, StaticServiceDiscovery};
use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

/// The sum of every applied command.
type Sum = raft_cluster::testing::Counter;

type Node = RaftHandle<Sum>;
type RpcCluster = Cluster<Sum, MemStorage, FaultyTransport<JsonRpcTransport>>;

/// The error code of a read that could not be served (nothing was done: retry).
const READ_UNAVAILABLE: i32 = -32022;

/// A client-facing `sum_read` method: a linearizable read through the node's handle.
fn api(node: Node) -> RpcModule<Node> {
    let mut m = RpcModule::new(node);
    m.register_async_method("sum_read", |_, h, _| async move {
        h.read(())
            .await
            .map(|v| json!({ "sum": v }))
            .map_err(|e| ErrorObject::owned(READ_UNAVAILABLE, e.to_string(), None::<()>))
    })
    .expect("a fresh method name");
    m
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(30),
        request_timeout: Duration::from_secs(5),
        ..RaftConfig::fast()
    }
}

/// Three nodes on real sockets, every send through `faults`, each with its API on a
/// port of its own; returns their API ports.
async fn start(config: RaftConfig, faults: &Faults) -> (RpcCluster, BTreeMap<NodeId, u16>) {
    let ports = free_ports(3);
    let ids: Vec<String> = (1..=3).map(|i| format!("node{i}")).collect();
    let discovery = Arc::new(StaticServiceDiscovery::new(
        ids.iter()
            .zip(&ports)
            .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p))),
    ));
    let addrs: BTreeMap<NodeId, u16> = ids.iter().zip(&ports).map(|(i, p)| (NodeId::new(i), *p)).collect();
    let (a, f) = (addrs.clone(), faults.clone());
    let cluster = Cluster::start(
        ids,
        config,
        |_| Ok(MemStorage::default()),
        |_| Sum::default(),
        move |id| {
            let listen = format!("127.0.0.1:{}", a[id]).parse().unwrap();
            let rpc = JsonRpcTransport::new(
                id.clone(),
                JsonRpcConfig::new(listen, "t20").with_token("tok"),
                discovery.clone(),
            );
            FaultyTransport::new(id.clone(), rpc, f.clone())
        },
    )
    .await
    .expect("cluster starts");
    let mut api_ports = BTreeMap::new();
    for n in cluster.nodes() {
        let server = jsonrpsee::server::Server::builder()
            .build("127.0.0.1:0")
            .await
            .expect("an API port");
        api_ports.insert(n.id().clone(), server.local_addr().expect("bound").port());
        // Serves until the test's runtime ends (its handle kept in that task).
        tokio::spawn(server.start(api(n.clone())).stopped());
    }
    (cluster, api_ports)
}

/// A plain HTTP/1.1 JSON-RPC call, as any client sends it; returns the response body.
async fn post(port: u16, method: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).to_string();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer tok\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("an HTTP answer")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(text)
}

/// Proposes `v` on whoever leads until it is acknowledged.
async fn put(cluster: &RpcCluster, v: u64) {
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

/// When one of `nodes` first hears of a leader other than `dead`.
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
async fn jsonrpc_a_read_in_flight_when_the_leader_dies_is_answered_by_the_next_leader() {
    let config = config();
    let request_timeout = config.request_timeout;
    let faults = Faults::new();
    let (mut cluster, ports) = start(config.clone(), &faults).await;
    let leader = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
    for v in 1..=5 {
        put(&cluster, v).await;
    }
    let want = 15u64;
    let dead = leader.id().clone();
    let survivors: Vec<Node> = cluster.nodes().filter(|n| n.id() != &dead).cloned().collect();
    let follower = survivors[0].clone();
    let follower_port = ports[follower.id()];
    assert_eq!(
        serde_json::from_str::<Value>(&post(follower_port, "sum_read").await).expect("JSON")["result"]["sum"],
        want,
        "the HTTP read works before the kill"
    );
    // Its answers and heartbeats never leave: the followers' ReadIndex requests reach
    // a leader that will never answer them.
    for n in &survivors {
        faults.cut(&dead, n.id());
    }
    let mut elected = watch_election(&survivors, &dead);
    let handle_reader = {
        let f = follower.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = f.read(()).await;
            (answer, started.elapsed(), Instant::now())
        })
    };
    let http_reader = tokio::spawn(async move {
        let started = Instant::now();
        let body = post(follower_port, "sum_read").await;
        (body, started.elapsed(), Instant::now())
    });
    sleep(Duration::from_millis(20)).await;
    // Abruptly: the node task is dropped where it stands, its transport with it (its
    // port closes).
    cluster.kill(&dead).await;
    let killed_at = Instant::now();
    faults.heal();

    let (answer, took, handle_done) = handle_reader.await.expect("reader");
    match answer {
        Ok(v) => assert_eq!(v, want, "the read misses acknowledged writes"),
        Err(e @ Error::Timeout(_)) => panic!("a read reported an unknown outcome: {e}"),
        Err(e) => panic!("the read was not answered across the leader's death: {e}"),
    }
    assert!(took < request_timeout, "{took:?}");
    let (body, http_took, http_done) = http_reader.await.expect("HTTP reader");
    let reply: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
    assert_eq!(
        reply["result"]["sum"], want,
        "the HTTP read is answered across the leader's death: {reply}"
    );
    assert!(http_took < request_timeout, "{http_took:?}");
    let elected_at = elected.recv().await.expect("a survivor heard of the election");
    let new_leader = cluster.wait_for_leader(PATIENCE).await.expect("a new leader");
    assert_ne!(new_leader.id(), &dead);
    for (how, took, done) in [
        ("RaftHandle::read", took, handle_done),
        ("HTTP sum_read", http_took, http_done),
    ] {
        eprintln!(
            "jsonrpc: {how} on {} across the leader's death: {took:?} in all, {:?} after the kill, {:?} after the next leader was elected (request timeout {request_timeout:?}, election timeout {:?})",
            follower.id(),
            done.saturating_duration_since(killed_at),
            done.saturating_duration_since(elected_at),
            config.election_timeout
        );
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_a_read_that_cannot_be_served_is_a_read_timeout_never_an_unknown_outcome() {
    let config = RaftConfig {
        request_timeout: Duration::from_secs(1),
        ..config()
    };
    let faults = Faults::new();
    let (mut cluster, ports) = start(config, &faults).await;
    let leader = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
    put(&cluster, 7).await;
    let follower = cluster
        .nodes()
        .find(|n| n.id() != leader.id())
        .cloned()
        .expect("a follower");
    let others: Vec<NodeId> = cluster
        .nodes()
        .map(|n| n.id().clone())
        .filter(|id| id != follower.id())
        .collect();
    faults.partition(&[&[follower.id().clone()], &others]);
    let answer = follower.read(()).await;
    match &answer {
        Err(e @ Error::ReadTimeout(_)) => {
            assert!(e.is_timeout());
            assert!(!e.to_string().contains("unknown"), "{e}");
        }
        Err(Error::Timeout(_)) => panic!("a read reported as an unknown outcome: {answer:?}"),
        other => panic!("an isolated follower answered a linearizable read: {other:?}"),
    }
    // Over HTTP the client gets "could not be served, retry", not a result.
    let reply: Value = serde_json::from_str(&post(ports[follower.id()], "sum_read").await).expect("JSON");
    assert_eq!(reply["error"]["code"], READ_UNAVAILABLE, "{reply}");
    assert!(
        !reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown"),
        "{reply}"
    );
    faults.heal();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match follower.read(()).await {
            Ok(v) => {
                assert_eq!(v, 7);
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
