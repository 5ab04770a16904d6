//! The API server on the node's handle (`examples::serve`), for load balancers,
//! operators and clients, on its own port beside the Raft port: `GET /health` is 200
//! with JSON while the node runs and 503 once it stopped, `GET /status` reports role,
//! term, leader, commit and applied as JSON, `GET /metrics` is the node's metrics in
//! the Prometheus text format, all without the token; JSON-RPC needs the token, an
//! unknown path is 404, and a killed node's API port is closed.

mod support;

use std::time::Duration;

use easyraft::RaftConfig;
use examples::kv;
use examples::runner::LocalCluster;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One plain HTTP/1.1 request, as a load balancer, Prometheus or `curl` sends it:
/// the status, the content type and the body.
async fn request(port: u16, head: &str, body: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

async fn get(port: u16, path: &str) -> (u16, String, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    request(port, &head, "").await
}

async fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (code, _, body) = get(port, path).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {body:?}"));
    (code, json)
}

async fn post(port: u16, token: Option<&str>, body: &str) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (code, _, body) = request(port, &head, body).await;
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_metrics_answer_on_the_api_port_without_the_token() {
    let mut local = LocalCluster::start(3, None, RaftConfig::fast(), kv::rpc).await.unwrap();
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let ports = local.ports.clone();
    let port = ports[leader.id().as_str()];
    assert_ne!(
        port,
        local.raft_ports[leader.id().as_str()],
        "the API has a port of its own"
    );
    for i in 0..5 {
        call(
            &ports,
            port,
            "kv_put",
            &[("key", json!(format!("k{i}"))), ("value", json!("v"))],
        )
        .await
        .unwrap();
    }
    // A proposal resolves when applied; the view that `/status` reports is
    // published right after, at the end of that round.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while leader.view().applied < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the view never showed the writes applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let id = leader.id().as_str();

    let (code, ct, body) = get(port, "/health").await;
    assert_eq!((code, ct.as_str()), (200, "application/json"), "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health, json!({"status": "ok", "id": id}));
    let (code, _) = get_json(port, "/health?probe=lb").await;
    assert_eq!(code, 200, "a query string does not matter");

    let (code, status) = get_json(port, "/status?verbose=1").await;
    assert_eq!(code, 200, "{status}");
    let view = leader.view();
    assert_eq!(status["id"], id, "{status}");
    assert_eq!(status["role"], "leader", "{status}");
    assert_eq!(status["leader"], id, "{status}");
    assert_eq!(status["term"], view.term, "{status}");
    assert_eq!(status["running"], true, "{status}");
    // The no-op of the new term plus five commands.
    assert!(status["commit"].as_u64().unwrap() >= 6, "{status}");
    assert!(status["applied"].as_u64().unwrap() >= 6, "{status}");
    assert!(
        status["applied"].as_u64() <= status["commit"].as_u64(),
        "applied never passes commit: {status}"
    );

    // Prometheus metrics: the counters and histograms of this very node.
    let (code, ct, metrics) = get(port, "/metrics").await;
    assert_eq!((code, ct.as_str()), (200, "text/plain; version=0.0.4"), "{metrics}");
    let sample = |name: &str| -> f64 {
        let prefix = format!("{name}{{node=\"{id}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(sample("easyraft_proposals_total") >= 5.0, "{metrics}");
    assert!(sample("easyraft_applied_total") >= 6.0, "{metrics}");
    assert_eq!(sample("easyraft_propose_latency_seconds_count"), 5.0, "{metrics}");
    assert!(sample("easyraft_propose_latency_seconds_sum") > 0.0, "{metrics}");
    assert!(sample("easyraft_persist_latency_seconds_count") >= 1.0, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "easyraft_propose_latency_seconds_bucket{{node=\"{id}\",le=\"+Inf\"}} 5"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE easyraft_read_latency_seconds histogram"),
        "{metrics}"
    );

    for path in ["/", "/nope", "/healthz", "/status/extra", "/raft/"] {
        let (code, body) = get_json(port, path).await;
        assert_eq!(code, 404, "{path}: {body}");
    }
    // The token guards the JSON-RPC methods.
    let get_a = r#"{"jsonrpc":"2.0","id":1,"method":"kv_get","params":{"key":"k1"}}"#;
    for token in [None, Some("wrong")] {
        let (code, body) = post(port, token, get_a).await;
        assert_eq!(code, 401, "{token:?}: {body}");
    }
    let (code, body) = post(port, Some("local-token"), get_a).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"]["value"], "v");
    // The Raft methods are not on the API port.
    let (code, body) = post(
        port,
        Some("local-token"),
        r#"{"jsonrpc":"2.0","id":1,"method":"raft_heartbeat","params":{}}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32601,
        "{body}"
    );

    // A follower stopped gracefully: its API still answers, the node is down.
    let follower = local
        .cluster
        .nodes()
        .find(|n| n.id() != leader.id())
        .map(|n| n.id().to_string())
        .unwrap();
    local.cluster.stop_node(follower.as_str()).await;
    let (code, health) = get_json(ports[&follower], "/health").await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(health, json!({"status": "stopped", "id": follower}));
    let (code, status) = get_json(ports[&follower], "/status").await;
    assert_eq!((code, &status["running"]), (200, &json!(false)), "{status}");

    // A killed node's API port is closed: a load balancer sees it as down.
    local.kill(id).await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
    local.cluster.stop().await;
}
