//! Exactly-once writes through client sessions, on real servers: a compare-and-set
//! whose answer is lost on the way back, and whose leader is killed at that moment, is
//! sent again by easyraft-client (same session, same sequence number) to the members
//! that are left. The new leader answers with the first attempt's answer, and the
//! write took effect once: a CAS applied twice would answer "not ok" the second time.
//!
//! A proxy in front of the leader passes requests through and, for the first
//! `kv_cas`, keeps the answer, has the test kill the leader, then closes the
//! connection: the client sees a request sent and no answer.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use easyraft_client::client::{Call, Protocol};
use easyraft_client::policy::CallKind;
use serde_json::{json, Value};
use support::*;

/// What the proxy saw: the answer it kept from the client.
struct Dropped {
    body: Value,
}

/// Forwards connections on `listener` to `upstream`; the first answer to a request
/// that mentions `method` is kept (sent on `dropped`), and the connection is closed
/// once `go` says so, without passing the answer on.
fn proxy(
    listener: TcpListener,
    upstream: u16,
    method: &'static str,
    dropped: mpsc::Sender<Dropped>,
    go: mpsc::Receiver<()>,
) {
    let go = Arc::new(Mutex::new(Some((dropped, go))));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                // The leader is dead: close, as a dead host's port would refuse.
                let _ = client.shutdown(Shutdown::Both);
                continue;
            };
            let request = Arc::new(Mutex::new(Vec::<u8>::new()));
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let req = request.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = c_in.read(&mut buf) {
                    req.lock().unwrap().extend_from_slice(&buf[..n]);
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_out.shutdown(Shutdown::Write);
            });
            let go = go.clone();
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = s_in.read(&mut buf) {
                    let asked = std::mem::take(&mut *request.lock().unwrap());
                    let is_target = String::from_utf8_lossy(&asked).contains(method);
                    if is_target {
                        if let Some((dropped, go)) = go.lock().unwrap().take() {
                            let text = String::from_utf8_lossy(&buf[..n]).to_string();
                            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
                            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                            dropped.send(Dropped { body }).unwrap();
                            let _ = go.recv();
                            let _ = c_out.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(Shutdown::Both);
            });
        }
    });
}

#[test]
fn t25_a_cas_whose_answer_is_lost_and_whose_leader_dies_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (leader_id, leader_port) = leader(&nodes);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    proxy(listener, leader_port, "kv_cas", dropped_tx, go_rx);

    // The client knows the proxy first, then the other members.
    let mut endpoints = vec![format!("127.0.0.1:{proxy_port}")];
    endpoints.extend(
        nodes
            .iter()
            .filter(|n| n.id != leader_id)
            .map(|n| format!("127.0.0.1:{}", n.client)),
    );
    let client = easyraft_client_to(&endpoints, Protocol::Http, None).with_sessions();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let writer = {
        let client = client.clone();
        std::thread::spawn(move || {
            rt.block_on(async move {
                // A first write opens the session (through the proxy, answered).
                let warm = Call::new("kv_put", CallKind::Write, json!({"key": "warm", "value": "x"}));
                client.call(&warm).await.unwrap();
                let cas = Call::new(
                    "kv_cas",
                    CallKind::Write,
                    json!({"key": "k", "expected": null, "new": "1"}),
                );
                let reply = client.call(&cas).await;
                (reply, client.session_id().await)
            })
        })
    };
    let dropped = dropped_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the proxy saw the kv_cas answer");
    assert_eq!(
        dropped.body["result"]["ok"], true,
        "the first attempt succeeded: {}",
        dropped.body
    );
    // The leader dies with the answer lost; only then does the client see the close.
    let dead = nodes.iter().position(|n| n.id == leader_id).unwrap();
    nodes[dead].kill();
    go_tx.send(()).unwrap();

    let (reply, session) = writer.join().unwrap();
    let reply = reply.unwrap_or_else(|e| panic!("the retried cas: {e}"));
    assert!(session.is_some());
    assert_ne!(
        reply.endpoint.port, proxy_port,
        "the retry was answered by another member"
    );
    assert_eq!(
        reply.result, dropped.body["result"],
        "the retry is answered as the first attempt (applied once, same index)"
    );
    let live: Vec<u16> = nodes.iter().filter(|n| n.id != leader_id).map(|n| n.client).collect();
    let got = call_any(&live, "kv_get", json!({"key": "k"}), None).unwrap();
    assert_eq!(got["value"], "1");
}
