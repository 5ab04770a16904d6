//! The port carries Raft traffic only: a plain HTTP request (`/health`, `/status`,
//! `/metrics` included: those are the API server's, see examples::serve) gets a short
//! JSON 404, a garbled one 400, a bad upgrade of `/raft/` a status that says why, an
//! oversized request head is dropped, and the node keeps working beside all of it.
//! After shutdown the port is released.

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
async fn plain_http_on_the_raft_port_gets_a_short_refusal_and_the_node_keeps_working() {
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let (node, transport) = start_node("node1", &ids(1), ws_config("http"), &discovery).await;
    let addr = transport.local_addr().unwrap();
    wait_until("node1 to lead itself", || node.view().role == raft_core::Role::Leader).await;
    node.propose(1).await.unwrap();

    // The operator endpoints are the API server's, not the transport's.
    for path in ["/health", "/health?probe=lb", "/status", "/metrics"] {
        let (code, body) = get_json(addr, path).await;
        assert_eq!(code, 404, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("/raft/"), "{body}");
    }
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
    // Not even a request line: 400, not a crash.
    let resp = raw_request(addr, b"GARBAGE\r\n\r\n").await;
    assert_eq!(parse_response(&resp).unwrap().0, 400);
    // A request head past the limit is dropped without an answer.
    let mut huge = b"GET /raft/ HTTP/1.1\r\nX-Pad: ".to_vec();
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
    node.propose(99).await.unwrap();
    assert!(node.view().running);

    node.shutdown().await;
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
