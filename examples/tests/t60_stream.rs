//! The binary stream (`GET /v1/stream`) on a real cluster's API ports: many calls in
//! one frame are dispatched at once and answered as they complete (a waiting
//! `lock_acquire` does not hold up the calls after it), a follower's not-leader answer
//! is followed by easyraft-client over the stream, a stream without the token has
//! every call refused, frames that break the limits close the stream with a close
//! code (and the node serves on), a call that times out or waits on a node that is
//! killed fails as "no answer" without leaving anything behind in the client.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use easyraft::RaftConfig;
use easyraft_client::client::{Call, Client, Protocol, Settings};
use easyraft_client::endpoint::Endpoint;
use easyraft_client::policy::CallKind;
use easyraft_client::stream::{decode, encode, StreamOutcome, StreamRequest, StreamResponse, MAX_PER_FRAME};
use examples::runner::{LocalCluster, TOKEN};
use examples::{kv, lock};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// Opens a stream to `port`, with `Authorization: Bearer <token>` when given.
async fn open(port: u16, token: Option<&str>) -> Ws {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut req = format!("ws://127.0.0.1:{port}/v1/stream")
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::client_async(req, tcp).await.unwrap().0
}

fn request(id: u64, method: &str, params: Value) -> StreamRequest {
    StreamRequest {
        id,
        method: method.into(),
        params: params.to_string(),
    }
}

async fn send(ws: &mut Ws, frame: &[StreamRequest]) {
    ws.send(Message::Binary(encode(frame).unwrap().into())).await.unwrap();
}

/// The next frame of responses.
async fn next_frame(ws: &mut Ws) -> Vec<StreamResponse> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return decode(&b).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a frame of responses, got {other:?}"),
        }
    }
}

fn ok(r: &StreamResponse) -> Value {
    match &r.outcome {
        StreamOutcome::Ok(text) => serde_json::from_str(text).unwrap(),
        StreamOutcome::Err { code, message, .. } => panic!("call {} failed: {code} {message}", r.id),
    }
}

/// The close code the server ends the stream with.
async fn close_code(ws: &mut Ws) -> CloseCode {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn stream_client(ports: &[u16]) -> Client {
    stream_client_with(ports, Duration::from_secs(10))
}

fn stream_client_with(ports: &[u16], timeout: Duration) -> Client {
    Client::new(Settings {
        endpoints: ports
            .iter()
            .map(|p| Endpoint {
                host: "127.0.0.1".into(),
                port: *p,
                tls: false,
            })
            .collect(),
        connect_timeout: Duration::from_secs(2),
        timeout,
        deadline: Duration::from_secs(30),
        // LocalCluster's nodes want their token on every call: the admin token is the
        // one the client sends.
        admin_token: Some(TOKEN.into()),
        cacert: None,
        protocol: Protocol::Stream,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_one_frame_are_answered_as_they_complete_not_in_order() {
    let local = LocalCluster::start(3, None, RaftConfig::fast(), lock::rpc)
        .await
        .unwrap();
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let port = local.ports[leader.id().as_str()];
    let mut ws = open(port, Some(TOKEN)).await;
    send(
        &mut ws,
        &[request(
            1,
            "lock_acquire",
            json!({"name": "x", "owner": "a", "ttl_ms": 60_000}),
        )],
    )
    .await;
    let held = next_frame(&mut ws).await;
    assert_eq!(ok(&held[0])["granted"], json!(true));
    let token = ok(&held[0])["token"].clone();
    // One frame: a wait for `x` (held by a) first, then twenty other calls.
    let mut frame = vec![request(
        100,
        "lock_acquire",
        json!({"name": "x", "owner": "b", "ttl_ms": 60_000, "wait_ms": 60_000}),
    )];
    for i in 0..20u64 {
        frame.push(request(
            200 + i,
            "lock_acquire",
            json!({"name": format!("y{i}"), "owner": "c", "ttl_ms": 60_000}),
        ));
    }
    send(&mut ws, &frame).await;
    let mut answered = BTreeSet::new();
    let mut frames = 0;
    while answered.len() < 20 {
        for r in next_frame(&mut ws).await {
            assert_ne!(r.id, 100, "the waiting acquire was answered before the calls after it");
            assert_eq!(ok(&r)["granted"], json!(true), "call {}", r.id);
            assert!(answered.insert(r.id), "call {} answered twice", r.id);
        }
        frames += 1;
    }
    assert_eq!(answered, (200..220).collect::<BTreeSet<u64>>());
    assert!(frames <= 20);
    // a lets go on the same stream: the wait ends and is answered.
    send(
        &mut ws,
        &[request(
            2,
            "lock_release",
            json!({"name": "x", "owner": "a", "token": token}),
        )],
    )
    .await;
    let mut ids = BTreeSet::new();
    while ids.len() < 2 {
        for r in next_frame(&mut ws).await {
            let v = ok(&r);
            match r.id {
                2 => assert_eq!(v["released"], json!(true)),
                100 => assert_eq!((v["granted"].clone(), v["owner"].clone()), (json!(true), json!("b"))),
                other => panic!("unexpected answer {other}"),
            }
            ids.insert(r.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_redirect_is_followed_over_the_stream_by_many_concurrent_calls() {
    let local = LocalCluster::start(3, None, RaftConfig::fast(), kv::rpc).await.unwrap();
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let leader_port = local.ports[leader.id().as_str()];
    let follower_port = local
        .ports
        .iter()
        .find(|(id, _)| id.as_str() != leader.id().as_str())
        .map(|(_, p)| *p)
        .unwrap();
    // Raw: the follower answers a write with NOT_LEADER and the leader's address.
    let mut ws = open(follower_port, Some(TOKEN)).await;
    send(&mut ws, &[request(9, "kv_put", json!({"key": "k", "value": "v"}))]).await;
    match &next_frame(&mut ws).await[0].outcome {
        StreamOutcome::Err { code, data, .. } => {
            assert_eq!(*code, i64::from(examples::api::NOT_LEADER));
            let data: Value = serde_json::from_str(data.as_deref().unwrap()).unwrap();
            assert_eq!(data["address"], json!(format!("127.0.0.1:{leader_port}")));
        }
        other => panic!("a follower took a write: {other:?}"),
    }
    // The client, given only the follower, follows the hint; 64 concurrent calls from
    // clones of one client share its stream connections.
    let client = stream_client(&[follower_port]);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64u32 {
        let client = client.clone();
        calls.spawn(async move {
            let put = Call::new(
                "kv_put",
                CallKind::IdempotentWrite,
                json!({"key": format!("k{i}"), "value": format!("v{i}")}),
            )
            .admin();
            let reply = client.call(&put).await.unwrap();
            let get = Call::new("kv_get", CallKind::Read, json!({"key": format!("k{i}")})).admin();
            (reply.endpoint, client.call(&get).await.unwrap().result)
        });
    }
    let mut n = 0;
    while let Some(done) = calls.join_next().await {
        let (endpoint, got) = done.unwrap();
        assert_eq!(endpoint.port, leader_port);
        assert!(got["value"].as_str().is_some_and(|v| v.starts_with('v')), "{got}");
        n += 1;
    }
    assert_eq!(n, 64);
    assert_eq!(client.stream_pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_every_call_is_refused_and_bad_frames_close_the_stream() {
    let local = LocalCluster::start(1, None, RaftConfig::fast(), kv::rpc).await.unwrap();
    local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let port = local.ports["node1"];
    for token in [None, Some("wrong")] {
        let mut ws = open(port, token).await;
        send(
            &mut ws,
            &[
                request(1, "kv_get", json!({"key": "k"})),
                request(2, "kv_put", json!({"key": "k", "value": "v"})),
            ],
        )
        .await;
        let mut refused = 0;
        while refused < 2 {
            for r in next_frame(&mut ws).await {
                match r.outcome {
                    StreamOutcome::Err { code, .. } => assert_eq!(code, i64::from(examples::api::UNAUTHORIZED)),
                    other => panic!("{token:?}: call {} answered {other:?}", r.id),
                }
                refused += 1;
            }
        }
    }
    // Not a frame; too many calls in one; text: each closes its stream with a code.
    let mut ws = open(port, Some(TOKEN)).await;
    ws.send(Message::Binary(vec![0xff; 40].into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Invalid);
    let mut ws = open(port, Some(TOKEN)).await;
    let mut too_many = postcard::to_stdvec(&((MAX_PER_FRAME + 1) as u64)).unwrap();
    too_many.extend(std::iter::repeat_n(0u8, 3 * (MAX_PER_FRAME + 1)));
    ws.send(Message::Binary(too_many.into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);
    let mut ws = open(port, Some(TOKEN)).await;
    ws.send(Message::Text("{}".into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Unsupported);
    // A message over the frame limit.
    let mut ws = open(port, Some(TOKEN)).await;
    let _ = ws.send(Message::Binary(vec![1u8; (8 << 20) + 1].into())).await;
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);
    // A plain GET (no upgrade) is 400; the node still answers over a new stream.
    let http = reqwest_like_get(port).await;
    assert!(http.starts_with("HTTP/1.1 400"), "{http}");
    let mut ws = open(port, Some(TOKEN)).await;
    send(&mut ws, &[request(3, "kv_put", json!({"key": "k", "value": "v"}))]).await;
    assert!(ok(&next_frame(&mut ws).await[0])["index"].as_u64().is_some());
}

/// `GET /v1/stream` without an upgrade: the status line and the rest.
async fn reqwest_like_get(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_a_killed_node_has_no_answer_and_leaves_nothing_behind() {
    let mut local = LocalCluster::start(3, None, RaftConfig::fast(), lock::rpc)
        .await
        .unwrap();
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let id = leader.id().to_string();
    let port = local.ports[&id];
    let client = stream_client(&[port]);
    let acquire = |owner: &str, wait_ms: u64| {
        Call::new(
            "lock_acquire",
            CallKind::Write,
            json!({"name": "x", "owner": owner, "ttl_ms": 60_000, "wait_ms": wait_ms}),
        )
        .admin()
        .with_extra_time(Duration::from_millis(wait_ms))
    };
    let a = client.call(&acquire("a", 0)).await.unwrap();
    assert_eq!(a.result["granted"], json!(true));
    let waiting = {
        let client = client.clone();
        let call = acquire("b", 60_000);
        tokio::spawn(async move { client.call(&call).await })
    };
    // The wait is in the connection's table once it was sent.
    while client.stream_pending() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    local.kill(&id).await;
    match waiting.await.unwrap() {
        Err(easyraft_client::Error::UnknownOutcome { .. }) => {}
        other => panic!("a write whose node died answered {other:?}"),
    }
    assert_eq!(client.stream_pending(), 0);
    // The next call connects again (to a dead port: nothing was sent).
    match client
        .call(&Call::new("lock_holder", CallKind::Read, json!({"name": "x"})).admin())
        .await
    {
        Err(easyraft_client::Error::Unreachable { .. } | easyraft_client::Error::Deadline { .. }) => {}
        other => panic!("a dead node answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_has_no_answer_and_the_stream_serves_on() {
    let local = LocalCluster::start(1, None, RaftConfig::fast(), lock::rpc)
        .await
        .unwrap();
    local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let client = stream_client_with(&[local.ports["node1"]], Duration::from_millis(500));
    let acquire = |owner: &str, wait_ms: u64| {
        Call::new(
            "lock_acquire",
            CallKind::Write,
            json!({"name": "x", "owner": owner, "ttl_ms": 60_000, "wait_ms": wait_ms}),
        )
        .admin()
    };
    assert_eq!(
        client.call(&acquire("a", 0)).await.unwrap().result["granted"],
        json!(true)
    );
    // Waits a minute on the server; the client gives up after its timeout.
    match client.call(&acquire("b", 60_000)).await {
        Err(easyraft_client::Error::UnknownOutcome { reason, .. }) => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("a call past its timeout answered {other:?}"),
    }
    assert_eq!(client.stream_pending(), 0);
    let holder = Call::new("lock_holder", CallKind::Read, json!({"name": "x"})).admin();
    assert_eq!(
        client.call(&holder).await.unwrap().result["holder"]["owner"],
        json!("a")
    );
}
