//! Several batches in flight to one peer, and their order kept into the peer's node.
//!
//! node1's transport sends AppendEntries to node2 (a real node with a real JSON-RPC
//! server) through a TCP proxy on loopback that can hold back node2's answers. Each
//! AppendEntries carries one entry, the one after the last, so node2's commit index
//! counts the ones it took in order: one that arrived out of order is refused (its
//! predecessor is missing) and so is every one after it.

use std::sync::Arc;
use std::time::Duration;

use raft_cluster::testing::Counter;
use raft_cluster::{RaftConfig, RaftHandle, RaftNode, Transport};
use raft_core::{AppendRequest, Entry, EntryPayload, LogIndex, MemStorage, Message, MessageBody, NodeId};
use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// An AppendEntries from node1 (term 7) carrying entry `index` and committing it.
fn append(index: LogIndex) -> Message {
    Message {
        group: 0,
        from: NodeId::new("node1"),
        to: NodeId::new("node2"),
        term: 7,
        body: MessageBody::AppendEntries(AppendRequest {
            prev_log_index: index - 1,
            prev_log_term: if index == 1 { 0 } else { 7 },
            entries: vec![Entry {
                term: 7,
                index,
                payload: EntryPayload::Noop,
            }],
            commit: index,
        }),
    }
}

/// A proxy to `upstream` that passes the client's bytes at once and the server's
/// bytes up to the end of the WebSocket handshake, then holds the rest while `gate`
/// is false.
async fn proxy(upstream: u16, gate: watch::Receiver<bool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
            });
            let mut gate = gate.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let mut handshake_done = false;
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if !handshake_done {
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            handshake_done = true;
                            if cw.write_all(&seen[..end + 4]).await.is_err() {
                                return;
                            }
                            let rest = seen.split_off(end + 4);
                            if gate.wait_for(|open| *open).await.is_err() || cw.write_all(&rest).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    if gate.wait_for(|open| *open).await.is_err() || cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Waits (a bounded while, so a failure ends the test) until node2 has committed
/// `index`.
async fn committed(node: &RaftHandle<Counter>, index: LogIndex, why: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while node.view().commit < index {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node2 committed {} of {index}: {why}",
            node.view().commit
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_are_in_flight_together_and_reach_the_peer_in_order() {
    let any = "127.0.0.1:0".parse().unwrap();
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let server = JsonRpcTransport::new("node2", JsonRpcConfig::new(any, "t30"), discovery.clone());
    let config = RaftConfig {
        election_timeout: Duration::from_secs(30),
        ..RaftConfig::fast()
    };
    let node2 = RaftNode::start(
        "node2",
        config,
        MemStorage::default(),
        Counter::default(),
        server.clone(),
        None,
    )
    .await
    .unwrap();
    let (open, gate) = watch::channel(false);
    let port = proxy(server.local_addr().unwrap().port(), gate).await;
    discovery
        .register_node(&NodeId::new("node2"), NodeAddress::new("127.0.0.1", port))
        .await
        .unwrap();
    let mut cfg = JsonRpcConfig::new(any, "t30");
    cfg.request_timeout = Duration::from_secs(120);
    cfg.max_in_flight = 8;
    let node1 = JsonRpcTransport::new("node1", cfg, discovery);
    let to = NodeId::new("node2");

    // No answer comes back, yet four batches leave and all reach node2.
    for i in 1..=4 {
        tokio::time::timeout(Duration::from_secs(30), node1.send(&to, vec![append(i)]))
            .await
            .expect("send waits for an answer: one batch in flight at a time")
            .unwrap();
    }
    committed(
        &node2,
        4,
        "the four batches were not all delivered in order without an answer",
    )
    .await;

    // Answers flow again: many more batches than the window, of 1 to 4 messages,
    // sent as fast as the window allows, all delivered in order.
    open.send(true).unwrap();
    let mut next = 5;
    for round in 0..400u64 {
        let n = round % 4 + 1;
        let batch: Vec<Message> = (next..next + n).map(append).collect();
        node1.send(&to, batch).await.unwrap();
        next += n;
    }
    committed(&node2, next - 1, "a batch overtook another").await;
    node2.shutdown().await;
    node1.stop().await;
}
