//! Many Raft groups on three hosts (`raft_cluster::RaftHost`) over real WebSocket
//! connections on loopback: each group elects and replicates on its own over the
//! hosts' one transport each, and a message for a group a host does not run gets a
//! typed `UnknownGroup` error reply (JSON) and leaves the host's groups working.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use raft_cluster::{HostOptions, RaftHost};
use raft_core::{GroupId, MemStorage, Membership, Message, MessageBody, NodeId};
use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_transport_ws::WsTransport;
use serde_json::Value;
use support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_share_the_hosts_connections_and_an_unknown_group_is_a_typed_error() {
    let discovery = Arc::new(StaticServiceDiscovery::new(Vec::<(&str, NodeAddress)>::new()));
    let all = ids(3);
    let mut hosts = Vec::new();
    let mut addrs = Vec::new();
    for id in &all {
        let transport = WsTransport::new(id.as_str(), ws_config("multi"), discovery.clone());
        let options = HostOptions::default().tick_interval(raft_config().heartbeat_interval);
        let host = RaftHost::start(id.clone(), transport.clone(), options)
            .await
            .expect("host starts");
        let addr = transport.local_addr().expect("bound");
        discovery
            .register_node(id, NodeAddress::new("127.0.0.1", addr.port()))
            .await
            .unwrap();
        hosts.push(host);
        addrs.push(addr);
    }
    let groups: Vec<GroupId> = (1..=6).collect();
    let mut members: Vec<Vec<Node>> = Vec::new();
    for &g in &groups {
        let mut nodes = Vec::new();
        for host in &hosts {
            let node = host
                .create_group(
                    g,
                    raft_config(),
                    MemStorage::default(),
                    Log::default(),
                    Some(Membership::with_voters(all.iter().cloned())),
                )
                .await
                .expect("group starts");
            nodes.push(node);
        }
        members.push(nodes);
    }
    for (&g, nodes) in groups.iter().zip(&members) {
        propose(nodes, g * 100).await;
        propose(nodes, g * 100 + 1).await;
    }
    for (&g, nodes) in groups.iter().zip(&members) {
        // Each group's log holds its own commands only.
        converge(nodes, &[g * 100, g * 100 + 1]).await;
    }

    // A JSON client sends host 1 a message of group 42, which no host runs.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/raft/", addrs[0]))
        .await
        .expect("handshake accepted");
    let stray = Message {
        group: 42,
        from: NodeId::new("node2"),
        to: all[0].clone(),
        term: 1_000,
        body: MessageBody::TimeoutNow,
    };
    ws.send(WsMessage::text(raft_wire::encode_envelope(&stray, "stray-1")))
        .await
        .unwrap();
    let reply = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a reply in time")
            .expect("connection open")
            .expect("a frame");
        if let WsMessage::Text(t) = frame {
            break serde_json::from_str::<Value>(t.as_str()).expect("JSON reply");
        }
    };
    assert_eq!(reply["messageType"], "Error", "{reply}");
    assert_eq!(reply["messageId"], "stray-1", "{reply}");
    assert_eq!(reply["error"]["code"], "UnknownGroup", "{reply}");

    // The hosts' groups are untouched: still in their terms, still writable.
    for nodes in &members {
        assert!(nodes.iter().all(|n| n.view().term < 1_000));
    }
    propose(&members[0], 7).await;
    converge(&members[0], &[100, 101, 7]).await;
    for host in &hosts {
        host.shutdown().await;
    }
}
