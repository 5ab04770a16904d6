//! The handshake and per-message checks, with tokio-tungstenite as a hostile client:
//! a wrong or missing token gets 401 and nothing of that connection reaches the node
//! (not even frames pipelined behind the refused handshake), another cluster gets
//! 403, an unsupported protocol version 400, and messages addressed to another node
//! or claiming another sender than the connection's `x-easyraft-node` are refused (an
//! `Error` reply for JSON, dropped for binary) and never reach the node.
//!
//! How "never reached the node" is proven: `node1` is a lone follower at term 0 (its
//! peers never come up and pre-vote keeps its term). Every refused message carries a
//! term of 50 or more; a good message with term 7 follows on the same path, and the
//! node must end at exactly term 7.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use raft_core::{Heartbeat, Message, MessageBody, NodeId};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Request};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

const TOKEN: &str = "s3cret";
const CLUSTER: &str = "checks";
const GOOD_TERM: u64 = 7;

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn heartbeat(from: &str, to: &str, term: u64) -> Message {
    Message {
        group: 0,
        from: NodeId::new(from),
        to: NodeId::new(to),
        term,
        body: MessageBody::Heartbeat(Heartbeat {
            commit: 0,
            read_round: 0,
        }),
    }
}

fn request(addr: std::net::SocketAddr, query: &str, headers: &[(&'static str, &str)]) -> Request<()> {
    let mut req = format!("ws://{addr}/raft/{query}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, HeaderValue::from_str(v).unwrap());
    }
    req
}

/// The handshake's HTTP status when refused; panics if it was accepted.
async fn refused(req: Request<()>) -> (u16, String) {
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => panic!("the handshake was accepted"),
        Err(WsError::Http(resp)) => (
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

async fn open(addr: std::net::SocketAddr, headers: &[(&'static str, &str)]) -> Client {
    let mut all = vec![("authorization", "Bearer s3cret")];
    all.extend_from_slice(headers);
    tokio_tungstenite::connect_async(request(addr, "", &all))
        .await
        .expect("handshake accepted")
        .0
}

/// The next text frame, as JSON.
async fn next_json(ws: &mut Client) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a reply in time")
            .expect("connection open")
            .expect("a frame");
        match frame {
            WsMessage::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON reply"),
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            other => panic!("expected a text reply, got {other:?}"),
        }
    }
}

async fn send_json(ws: &mut Client, m: &Message, id: &str) {
    ws.send(WsMessage::text(raft_wire::encode_envelope(m, id)))
        .await
        .unwrap();
}

async fn send_binary(ws: &mut Client, batch: &[Message]) {
    ws.send(WsMessage::Binary(raft_wire::encode_binary(batch).unwrap().into()))
        .await
        .unwrap();
}

async fn ends_at_good_term(node: &Node) {
    wait_until("the good message to arrive", || node.view().term >= GOOD_TERM).await;
    // Let anything that might still be in flight land before judging.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v = node.view();
    assert_eq!(v.term, GOOD_TERM, "a refused message reached the node: {v:?}");
    assert!(v.running);
}

fn cfg() -> raft_transport_ws::WsConfig {
    ws_config(CLUSTER).with_token(TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_token_gets_401_and_nothing_of_that_connection_is_delivered() {
    let (node, addr) = lone_follower(cfg()).await;

    let (status, body) = refused(request(addr, "", &[])).await;
    assert_eq!(status, 401, "no token");
    assert!(body.contains("token"), "the refusal says why: {body:?}");
    assert_eq!(
        refused(request(addr, "", &[("authorization", "Bearer nope")])).await.0,
        401
    );
    assert_eq!(
        refused(request(addr, "", &[("authorization", "s3cret")])).await.0,
        401,
        "no Bearer scheme"
    );
    assert_eq!(
        refused(request(addr, "?token=nope", &[])).await.0,
        401,
        "wrong query token"
    );
    assert_eq!(
        refused(request(addr, "?token=s3cret", &[("authorization", "Bearer nope")]))
            .await
            .0,
        401,
        "a wrong header is not rescued by a right query token"
    );

    // A client that does not wait for the answer: the handshake without a token and,
    // in the same write, a JSON frame and a binary frame that would raise the term.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut bytes = format!(
        "GET /raft/ HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WS_KEY}\r\n\r\n"
    )
    .into_bytes();
    let sneaky = heartbeat("node2", "node1", 50);
    bytes.extend(client_frame(0x1, raft_wire::encode_envelope(&sneaky, "x").as_bytes()));
    bytes.extend(client_frame(0x2, &raft_wire::encode_binary(&[sneaky]).unwrap()));
    raw.write_all(&bytes).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut resp))
        .await
        .expect("the node answers and closes")
        .ok();
    // Refused either way: 401, or (a client that sends before the handshake is
    // answered breaks RFC 6455 §4.1) a connection closed without an upgrade.
    if let Ok((status, _)) = parse_response(&resp) {
        assert_eq!(status, 401);
    } else {
        assert!(resp.is_empty(), "{:?}", String::from_utf8_lossy(&resp));
    }

    // The right token, in the header or the query, is let in.
    let mut ws = open(addr, &[("x-easyraft-node", "node2")]).await;
    let mut q = tokio_tungstenite::connect_async(request(addr, "?token=s3cret", &[]))
        .await
        .expect("query token accepted")
        .0;
    q.close(None).await.ok();
    send_binary(&mut ws, &[heartbeat("node2", "node1", GOOD_TERM)]).await;
    ends_at_good_term(&node).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cluster_gets_403_and_an_unsupported_protocol_400() {
    let (node, addr) = lone_follower(cfg()).await;
    let auth = ("authorization", "Bearer s3cret");
    let (status, body) = refused(request(addr, "", &[auth, ("x-easyraft-cluster", "other")])).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cluster"), "{body:?}");
    for bad in ["2", "0", "one", ""] {
        let (status, body) = refused(request(addr, "", &[auth, ("x-easyraft-protocol", bad)])).await;
        assert_eq!(status, 400, "protocol {bad:?}: {body}");
        assert!(body.contains("protocol"), "{body:?}");
    }
    // The token is checked first: a stranger learns nothing about the cluster id.
    assert_eq!(
        refused(request(addr, "", &[("x-easyraft-cluster", "other")])).await.0,
        401
    );
    // Not the Raft endpoint.
    let mut req = request(addr, "", &[auth]);
    *req.uri_mut() = format!("ws://{addr}/raftx").parse().unwrap();
    assert_eq!(refused(req).await.0, 404);
    let mut req = request(addr, "", &[auth]);
    *req.uri_mut() = format!("ws://{addr}/elsewhere").parse().unwrap();
    assert_eq!(refused(req).await.0, 404);
    // The right headers are accepted.
    let mut ws = open(
        addr,
        &[
            ("x-easyraft-cluster", CLUSTER),
            ("x-easyraft-protocol", "1"),
            ("x-easyraft-node", "node2"),
        ],
    )
    .await;
    send_binary(&mut ws, &[heartbeat("node2", "node1", GOOD_TERM)]).await;
    ends_at_good_term(&node).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_for_another_node_are_refused_and_never_reach_this_one() {
    let (node, addr) = lone_follower(cfg()).await;
    let mut ws = open(addr, &[("x-easyraft-node", "node2")]).await;

    // JSON: an Error reply naming the message.
    send_json(&mut ws, &heartbeat("node2", "node9", 50), "to-node9").await;
    let r = next_json(&mut ws).await;
    assert_eq!(r["messageType"], "Error", "{r}");
    assert_eq!(r["error"]["code"], "WrongTarget", "{r}");
    assert_eq!(r["messageId"], "to-node9", "{r}");

    // Binary: dropped without a reply, alone or inside a batch with good messages.
    send_binary(&mut ws, &[heartbeat("node2", "node3", 60)]).await;
    send_binary(
        &mut ws,
        &[heartbeat("node2", "node9", 70), heartbeat("node2", "node1", GOOD_TERM)],
    )
    .await;
    // The connection is still open and in order: the next reply is this error, so no
    // reply came for the binary frames.
    send_json(&mut ws, &heartbeat("node2", "", 80), "empty-target").await;
    let r = next_json(&mut ws).await;
    assert_eq!(r["error"]["code"], "BadPayload", "{r}");
    assert_eq!(r["messageId"], "empty-target", "{r}");

    ends_at_good_term(&node).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_claiming_another_sender_than_the_handshake_are_refused() {
    let (node, addr) = lone_follower(cfg()).await;
    let mut ws = open(addr, &[("x-easyraft-node", "node2")]).await;

    send_json(&mut ws, &heartbeat("node3", "node1", 50), "spoofed").await;
    let r = next_json(&mut ws).await;
    assert_eq!(r["messageType"], "Error", "{r}");
    assert_eq!(r["error"]["code"], "WrongSender", "{r}");
    assert_eq!(r["messageId"], "spoofed", "{r}");

    send_binary(
        &mut ws,
        &[heartbeat("node3", "node1", 60), heartbeat("node2", "node1", GOOD_TERM)],
    )
    .await;
    // A JSON message from the connection's own node gets no reply (peers are not
    // acknowledged), so the next reply is this second refusal.
    send_json(&mut ws, &heartbeat("node2", "node1", GOOD_TERM), "own").await;
    send_json(&mut ws, &heartbeat("node1", "node1", 90), "as-me").await;
    let r = next_json(&mut ws).await;
    assert_eq!(r["error"]["code"], "WrongSender", "{r}");
    assert_eq!(r["messageId"], "as-me", "{r}");

    ends_at_good_term(&node).await;
    node.shutdown().await;
}
