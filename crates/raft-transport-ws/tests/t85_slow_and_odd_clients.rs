//! Clients that misbehave below the Raft protocol: one that never finishes its
//! request head is closed after the handshake timeout, connections over the cap are
//! closed at once (and the node serves again once they are gone), a close frame with
//! a code no endpoint may send (999) gets a close reply, and a JSON frame over the
//! JSON limit is closed with 1009 before it is parsed. The node keeps running.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let r = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "the server kept the connection open for {limit:?}");
    started.elapsed()
}

async fn health(addr: std::net::SocketAddr) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await else {
        return false;
    };
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).starts_with("HTTP/1.1 ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_closed_after_the_handshake_timeout() {
    let mut cfg = ws_config("slow");
    cfg.handshake_timeout = Duration::from_millis(500);
    let (node, addr) = lone_follower(cfg).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /raft/ HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(10)).await;
    assert!(
        took >= Duration::from_millis(400),
        "closed before the timeout: {took:?}"
    );
    // A silent one too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(10)).await;
    assert!(health(addr).await, "the node still answers");
    assert!(node.view().running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_and_the_node_serves_again_when_they_go() {
    let mut cfg = ws_config("cap");
    cfg.max_connections = 4;
    cfg.handshake_timeout = Duration::from_secs(2);
    let (node, addr) = lone_follower(cfg).await;
    let mut hogs = Vec::new();
    for _ in 0..4 {
        hogs.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let took = closed_within(&mut extra, Duration::from_secs(1)).await;
    assert!(took < Duration::from_secs(1));
    // The hogs time out; then the node serves again.
    for h in &mut hogs {
        closed_within(h, Duration::from_secs(10)).await;
    }
    wait_until_async("the node to serve again", async || health(addr).await).await;
    assert!(node.view().running);
}

async fn wait_until_async(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect(addr: std::net::SocketAddr) -> Client {
    let mut req = format!("ws://{addr}/raft/").into_client_request().unwrap();
    req.headers_mut()
        .insert("x-easyraft-node", HeaderValue::from_static("odd"));
    tokio_tungstenite::connect_async(req).await.expect("handshake").0
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The close frame the server sends back, if any, within a few seconds.
async fn close_reply(ws: &mut Client) -> Option<CloseFrame> {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(f)) = ws.next().await {
            if let WsMessage::Close(c) = f {
                return c;
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_frame_with_a_forbidden_code_gets_a_close_reply() {
    let (node, addr) = lone_follower(ws_config("close")).await;
    let mut ws = connect(addr).await;
    ws.send(WsMessage::Close(Some(CloseFrame {
        code: CloseCode::from(999),
        reason: "odd".into(),
    })))
    .await
    .unwrap();
    let reply = close_reply(&mut ws).await.expect("a close reply");
    assert_eq!(reply.code, CloseCode::Protocol, "{reply:?}");
    // An ordinary close gets its echo too.
    let mut ws = connect(addr).await;
    ws.send(WsMessage::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    assert_eq!(close_reply(&mut ws).await.map(|c| c.code), Some(CloseCode::Normal));
    assert!(node.view().running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_frame_over_the_json_limit_is_closed_before_it_is_parsed() {
    let mut cfg = ws_config("json");
    cfg.max_json_bytes = 64 << 10;
    let (node, addr) = lone_follower(cfg).await;
    let mut ws = connect(addr).await;
    let huge = format!("[{}0]", "0,".repeat(100_000));
    ws.send(WsMessage::text(huge)).await.unwrap();
    let reply = close_reply(&mut ws).await.expect("closed");
    assert_eq!(reply.code, CloseCode::Size);
    assert!(reply.reason.contains("over the limit"), "{reply:?}");
    assert!(node.view().running);
}
