//! A real cluster over JSON-RPC on 127.0.0.1, and what a plain JSON-RPC client gets
//! for good and bad calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft_cluster::{BoxError, Cluster, RaftConfig, StateMachine};
use raft_core::{LogIndex, MemStorage, NodeId};
use raft_discovery::{NodeAddress, StaticServiceDiscovery};
use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sum of every applied command, and how many were applied.
#[derive(Default)]
struct Sum {
    total: u64,
    count: u64,
}

impl StateMachine for Sum {
    type Command = u64;
    type Response = u64;
    type Query = ();
    type QueryResponse = (u64, u64);
    fn apply(&mut self, _index: LogIndex, v: u64) -> u64 {
        self.total += v;
        self.count += 1;
        self.total
    }
    fn query(&self, _: ()) -> (u64, u64) {
        (self.total, self.count)
    }
    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok([self.total.to_be_bytes(), self.count.to_be_bytes()].concat().into())
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        let (a, b) = data.split_at_checked(8).ok_or("short snapshot")?;
        self.total = u64::from_be_bytes(a.try_into()?);
        self.count = u64::from_be_bytes(b.try_into()?);
        Ok(())
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

type RpcCluster = Cluster<Sum, MemStorage, JsonRpcTransport>;

async fn start(token: &str) -> (RpcCluster, BTreeMap<NodeId, u16>) {
    let ports = free_ports(3);
    let ids: Vec<String> = (1..=3).map(|i| format!("node{i}")).collect();
    let discovery = Arc::new(StaticServiceDiscovery::new(
        ids.iter()
            .zip(&ports)
            .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p))),
    ));
    let addrs: BTreeMap<NodeId, u16> = ids.iter().zip(&ports).map(|(i, p)| (NodeId::new(i), *p)).collect();
    let a = addrs.clone();
    let token = token.to_string();
    let cluster = Cluster::start(
        ids,
        RaftConfig::fast(),
        |_| Ok(MemStorage::default()),
        |_| Sum::default(),
        move |id| {
            let listen = format!("127.0.0.1:{}", a[id]).parse().unwrap();
            JsonRpcTransport::new(
                id.clone(),
                JsonRpcConfig::new(listen, "t10").with_token(token.clone()),
                discovery.clone(),
            )
        },
    )
    .await
    .unwrap();
    (cluster, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_cluster_elects_replicates_and_survives_a_leader_kill() {
    let (mut cluster, _) = start("tok").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let mut tasks = Vec::new();
    for c in 0..4u64 {
        let h = leader.clone();
        tasks.push(tokio::spawn(async move {
            for i in 1..=50u64 {
                h.propose(c * 100 + i).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let want = leader.read(()).await.unwrap();
    assert_eq!(want.1, 200);
    cluster.kill(leader.id().as_str()).await;
    let next = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let mut acked = 0;
    for _ in 0..100 {
        if next.propose(1).await.is_ok() {
            acked += 1;
            if acked == 10 {
                break;
            }
        }
    }
    assert_eq!(acked, 10);
    for n in cluster.nodes() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = n.read(()).await.ok();
            if got == Some((want.0 + 10, 210)) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} has {got:?}", n.id());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    cluster.stop().await;
}

/// A minimal HTTP/1.1 JSON-RPC client: what any JSON-RPC library would send.
async fn post(port: u16, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn error_code(body: &str) -> i64 {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_get_json_rpc_errors_and_the_node_keeps_serving() {
    let (mut cluster, addrs) = start("tok").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    leader.propose(5).await.unwrap();
    let target = cluster.nodes().find(|n| n.id() != leader.id()).unwrap().clone();
    let port = addrs[target.id()];
    let before = target.status().await.unwrap();
    let tok = Some("tok");
    let call = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            .to_string()
            .into_bytes()
    };
    // No token: 401, nothing reaches the node.
    let (status, _) = post(port, None, &call("raft_heartbeat", json!({}))).await;
    assert_eq!(status, 401);
    let (status, _) = post(port, Some("wrong"), &call("raft_heartbeat", json!({}))).await;
    assert_eq!(status, 401);
    // Standard codes for malformed calls.
    let (_, body) = post(port, tok, b"this is not json").await;
    assert_eq!(error_code(&body), -32700);
    let (_, body) = post(port, tok, br#"{"jsonrpc":"1.0","id":1,"method":"raft_heartbeat"}"#).await;
    assert_eq!(error_code(&body), -32600);
    let (_, body) = post(port, tok, &call("raft_noSuchMethod", json!({}))).await;
    assert_eq!(error_code(&body), -32601);
    let (_, body) = post(port, tok, &call("raft_heartbeat", json!([1, 2]))).await;
    assert_eq!(error_code(&body), -32602);
    let (_, body) = post(port, tok, &call("raft_heartbeat", json!({"from": "x", "term": "one"}))).await;
    assert_eq!(error_code(&body), -32602);
    let (_, body) = post(
        port,
        tok,
        &call("raft_heartbeat", json!({"from": "x", "term": 1, "commit": -5})),
    )
    .await;
    assert_eq!(error_code(&body), -32602);
    // A message for another node.
    let params = json!({"from": "node9", "to": "nobody", "term": 1, "commit": 0, "read_round": 0});
    let (_, body) = post(port, tok, &call("raft_heartbeat", params)).await;
    assert_eq!(error_code(&body), -32010);
    // A batch of 10,000 calls is refused whole.
    let batch: Vec<Value> = (0..10_000)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "raft_noSuchMethod"}))
        .collect();
    let (status, body) = post(port, tok, serde_json::to_string(&batch).unwrap().as_bytes()).await;
    assert!(status == 200 && error_code(&body) != 0, "{status} {body}");
    // A body over the limit (64 MiB by default; send 65 MiB of junk).
    let huge = vec![b' '; 65 << 20];
    let (status, _) = post(port, tok, &huge).await;
    assert_eq!(status, 413);
    // Nothing above reached the core; the node still works.
    let after = target.status().await.unwrap();
    assert_eq!(after.term, before.term);
    leader.propose(7).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while target.read(()).await.ok() != Some((12, 2)) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop().await;
}

/// A plain `GET`, as a load balancer or Prometheus sends it (no token): the status.
async fn get(port: u16, path: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The port carries Raft traffic only: `/health`, `/status` and `/metrics` are the
/// API server's (examples::serve), here they are plain requests behind the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_rpc_port_serves_only_the_raft_methods_behind_the_token() {
    let (mut cluster, addrs) = start("tok").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    leader.propose(1).await.unwrap();
    let port = addrs[leader.id()];
    for path in ["/health", "/status", "/metrics", "/raft"] {
        assert_eq!(
            get(port, path).await,
            401,
            "{path} goes to jsonrpsee behind the token check"
        );
    }
    let (status, _) = post(
        port,
        None,
        br#"{"jsonrpc":"2.0","id":1,"method":"raft_heartbeat","params":{}}"#,
    )
    .await;
    assert_eq!(status, 401);
    // With the token, an application method is not found: only `raft_*` are served.
    let (status, body) = post(
        port,
        Some("tok"),
        br#"{"jsonrpc":"2.0","id":1,"method":"kv_get","params":{"key":"a"}}"#,
    )
    .await;
    assert_eq!((status, error_code(&body)), (200, -32601), "{body}");
    // All of that left the node serving.
    leader.propose(2).await.unwrap();

    // A stopped node's port is closed.
    let id = leader.id().clone();
    cluster.stop_node(id.as_str()).await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
    cluster.stop().await;
}
