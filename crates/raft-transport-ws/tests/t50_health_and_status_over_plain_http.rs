//! The plain-HTTP side of a node's port, for load balancers and operators:
//! `GET /health` is 200 with JSON while the node runs, `GET /status` reports role,
//! term, leader, commit and applied as JSON, `GET /metrics` is the node's metrics
//! in the Prometheus text format, an unknown path or a garbled request is
//! 404, an oversized request head is dropped, and the Raft endpoint keeps working
//! beside all of it. After shutdown the port is released.

mod support;

use std::sync::Arc;
use std::time::Duration;

use raft_discovery::StaticServiceDiscovery;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_json(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let (code, body) = http_get(addr, path).await.expect("an HTTP answer");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {body:?}"));
    (code, json)
}

async fn raw_request(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The node may close before reading it all (an oversized head): ignore that.
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("the node answers or closes promptly");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_status_answer_json_on_the_raft_port_and_unknown_paths_are_404() {
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let (node, transport) = start_node("node1", &ids(1), ws_config("http"), &discovery).await;
    let addr = transport.local_addr().unwrap();
    wait_until("node1 to lead itself", || node.view().role == raft_core::Role::Leader).await;
    for v in 0..5u64 {
        node.propose(v).await.unwrap();
    }
    wait_until("the commands to be applied", || node.view().applied >= 6).await;

    let (code, health) = get_json(addr, "/health").await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["id"], "node1", "{health}");
    let (code, _) = get_json(addr, "/health?probe=lb").await;
    assert_eq!(code, 200, "a query string does not matter");

    let (code, status) = get_json(addr, "/status").await;
    assert_eq!(code, 200, "{status}");
    let view = node.view();
    assert_eq!(status["id"], "node1", "{status}");
    assert_eq!(status["role"], "leader", "{status}");
    assert_eq!(status["leader"], "node1", "{status}");
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
    let (code, metrics) = http_get(addr, "/metrics").await.expect("an HTTP answer");
    assert_eq!(code, 200, "{metrics}");
    let sample = |name: &str| -> f64 {
        let prefix = format!("{name}{{node=\"node1\"}} ");
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
        metrics.contains("easyraft_propose_latency_seconds_bucket{node=\"node1\",le=\"+Inf\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE easyraft_read_latency_seconds histogram"),
        "{metrics}"
    );

    for path in ["/", "/nope", "/healthz", "/status/extra", "/rafts"] {
        let (code, body) = get_json(addr, path).await;
        assert_eq!(code, 404, "{path}: {body}");
    }
    // The Raft endpoint asked for without a proper upgrade: a status that says why,
    // not a silent close.
    let (code, body) = get_json(addr, "/raft/").await;
    assert_eq!(code, 426, "{body}");
    assert!(body["error"].as_str().unwrap().contains("WebSocket"), "{body}");
    let upgrade = |method: &str, version: &str, key: bool| {
        let key = if key {
            format!("Sec-WebSocket-Key: {WS_KEY}\r\n")
        } else {
            String::new()
        };
        format!(
            "{method} /raft/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: {version}\r\n{key}\r\n"
        )
    };
    for (req, want) in [
        (upgrade("POST", "13", true), 405),
        (upgrade("GET", "8", true), 426),
        (upgrade("GET", "13", false), 400),
    ] {
        let resp = raw_request(addr, req.as_bytes()).await;
        let (code, body) = parse_response(&resp).unwrap();
        assert_eq!(code, want, "{req}: {body}");
        assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
    }
    // Not even a request line: 404, not a crash.
    let resp = raw_request(addr, b"GARBAGE\r\n\r\n").await;
    assert_eq!(parse_response(&resp).unwrap().0, 404);
    // A request head past the limit is dropped without an answer.
    let mut huge = b"GET /health HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.extend_from_slice(&[b'a'; 64 * 1024]);
    huge.extend_from_slice(b"\r\n\r\n");
    let resp = raw_request(addr, &huge).await;
    assert!(
        resp.is_empty(),
        "an oversized head gets no answer: {:?}",
        String::from_utf8_lossy(&resp)
    );
    // A client that hangs up in the middle of its head.
    drop(tokio::net::TcpStream::connect(addr).await.unwrap());

    // All of that left the node serving.
    let (code, _) = get_json(addr, "/health").await;
    assert_eq!(code, 200);
    node.propose(99).await.unwrap();

    node.shutdown().await;
    let after = http_get(addr, "/health").await;
    assert!(after.is_err() || after.as_ref().unwrap().0 == 503, "{after:?}");
    // The port is free again.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if tokio::net::TcpListener::bind(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the port is released after shutdown");
}
