//! Issue 13 over real sockets: a 3-node cluster on 127.0.0.1 receives, from a made-up
//! sender "evil" with a valid connection, a heartbeat with term u64::MAX, an
//! InstallSnapshot at index u64::MAX, and a 10 MB binary frame of 2 million 5-byte
//! messages (which used to decode to ~470 MiB). Afterwards it still has one leader,
//! commits and reads writes, no node has stopped, no term reached the forged one, and
//! the process grew by less than 64 MiB.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use raft_core::{Heartbeat, Membership, Message, MessageBody, NodeId, SnapshotChunk, SnapshotMeta, MAX_TERM};
use raft_discovery::StaticServiceDiscovery;
use support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_as_evil(addr: std::net::SocketAddr) -> Client {
    let mut req = format!("ws://{addr}/raft/").into_client_request().unwrap();
    req.headers_mut()
        .insert("x-easyraft-node", HeaderValue::from_static("evil"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("handshake accepted")
        .0
}

fn from_evil(to: &NodeId, term: u64, body: MessageBody) -> Message {
    Message {
        group: 0,
        from: NodeId::new("evil"),
        to: to.clone(),
        term,
        body,
    }
}

/// The resident set size of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Three nodes on 127.0.0.1 that committed and applied the write `1`.
async fn three_nodes_with_one_write(cluster: &str) -> (Vec<NodeId>, Vec<Node>, Vec<std::net::SocketAddr>) {
    let voters = ids(3);
    let discovery = Arc::new(StaticServiceDiscovery::new(
        Vec::<(String, raft_discovery::NodeAddress)>::new(),
    ));
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for id in &voters {
        let (node, transport) = start_node(id.as_str(), &voters, ws_config(cluster), &discovery).await;
        addrs.push(transport.local_addr().unwrap());
        nodes.push(node);
    }
    propose(&nodes, 1).await;
    converge(&nodes, &[1]).await;
    (voters, nodes, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_survives_a_u64_max_term_a_u64_max_snapshot_and_a_huge_frame() {
    let (voters, nodes, addrs) = three_nodes_with_one_write("hostile").await;

    // A heartbeat at term u64::MAX and a snapshot at index u64::MAX, to every node.
    for (id, addr) in voters.iter().zip(&addrs) {
        let mut ws = connect_as_evil(*addr).await;
        let term = nodes.iter().map(|n| n.view().term).max().unwrap();
        let batch = [
            from_evil(
                id,
                u64::MAX,
                MessageBody::Heartbeat(Heartbeat {
                    commit: u64::MAX,
                    read_round: 0,
                }),
            ),
            from_evil(
                id,
                term,
                MessageBody::InstallSnapshot(SnapshotChunk {
                    meta: SnapshotMeta {
                        index: u64::MAX,
                        term,
                        membership: Membership::with_voters(voters.iter().cloned()),
                    },
                    offset: 0,
                    data: Bytes::from_static(b"garbage"),
                    done: true,
                    total: 7,
                    crc: 0,
                }),
            ),
        ];
        ws.send(WsMessage::Binary(raft_wire::encode_binary(&batch).unwrap().into()))
            .await
            .unwrap();
        ws.close(None).await.ok();
    }

    // 2 million TimeoutNow between empty ids: 10 MB on the wire.
    let before = rss();
    let mut frame = postcard::to_allocvec(&2_000_000u64).unwrap();
    let one = postcard::to_allocvec(&Message {
        group: 0,
        from: NodeId::new(""),
        to: NodeId::new(""),
        term: 1,
        body: MessageBody::TimeoutNow,
    })
    .unwrap();
    for _ in 0..2_000_000 {
        frame.extend_from_slice(&one);
    }
    let mut ws = connect_as_evil(addrs[0]).await;
    ws.send(WsMessage::Binary(frame.into())).await.unwrap();
    // The node closes the connection (1007) instead of decoding it.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(f)) = ws.next().await {
            if let WsMessage::Close(c) = f {
                return c;
            }
        }
        None
    })
    .await
    .expect("the connection closed in time");
    assert!(
        closed.as_ref().is_some_and(|c| c.reason.contains("over the limit")),
        "{closed:?}"
    );
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "decoding the frame grew the process by {grown} bytes");

    // The cluster works: one leader, writes commit and read back, nobody stopped.
    propose(&nodes, 2).await;
    converge(&nodes, &[1, 2]).await;
    leader_of(&nodes).await;
    for n in &nodes {
        let v = n.view();
        assert!(v.running, "{} stopped: {v:?}", n.id());
        assert!(v.term < MAX_TERM, "{} took a forged term: {v:?}", n.id());
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// A snapshot that passes every check the core can make (a sane index just past the
/// log, the current term, the cluster's membership, a correct CRC) but whose data the
/// state machine cannot read, sent from "evil" to a follower. The follower rejects it
/// before replacing anything, counts it, keeps its state and keeps running; the
/// cluster goes on committing, and the process does not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_rejects_a_snapshot_its_state_machine_cannot_read_and_keeps_going() {
    let (voters, nodes, addrs) = three_nodes_with_one_write("garbage").await;
    let leader = leader_of(&nodes).await;
    let at = nodes.iter().position(|n| n.id() != leader.id()).unwrap();
    let follower = &nodes[at];
    let before = rss();

    // Seven bytes: the test state machine reads whole u64s, so it refuses them.
    let data = Bytes::from_static(b"garbage");
    let view = follower.view();
    let chunk = SnapshotChunk {
        meta: SnapshotMeta {
            index: view.commit + 50,
            term: view.term,
            membership: Membership::with_voters(voters.iter().cloned()),
        },
        offset: 0,
        total: data.len() as u64,
        crc: crc32fast::hash(&data),
        data,
        done: true,
    };
    let mut ws = connect_as_evil(addrs[at]).await;
    let msg = from_evil(follower.id(), view.term, MessageBody::InstallSnapshot(chunk));
    ws.send(WsMessage::Binary(raft_wire::encode_binary(&[msg]).unwrap().into()))
        .await
        .unwrap();
    wait_until("the follower rejected the snapshot", || {
        follower.metrics().snapshots_rejected >= 1
    })
    .await;
    ws.close(None).await.ok();

    let m = follower.metrics();
    assert_eq!(m.snapshots_installed, 0, "{m:?}");
    assert_eq!(
        follower.read_local(()).await.unwrap_or_default(),
        vec![1],
        "the state was replaced"
    );
    propose(&nodes, 2).await;
    converge(&nodes, &[1, 2]).await;
    leader_of(&nodes).await;
    for n in &nodes {
        let v = n.view();
        assert!(v.running, "{} stopped: {v:?}", n.id());
    }
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "the process grew by {grown} bytes");
    for n in nodes {
        n.shutdown().await;
    }
}
