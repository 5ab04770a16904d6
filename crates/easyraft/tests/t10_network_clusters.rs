//! The facade's cluster managers over both real transports, built both ways:
//! from `(node_id, port)` pairs on localhost.

use std::time::Duration;

use easyraft::cluster::testing::Counter;
use easyraft::prelude::*;
use easyraft::NetClusterOptions;

fn ports() -> Vec<(String, u16)> {
    let ls: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter()
        .enumerate()
        .map(|(i, l)| (format!("node{}", i + 1), l.local_addr().unwrap().port()))
        .collect()
}

fn options<T: Default>(dir: &std::path::Path) -> NetClusterOptions<T> {
    NetClusterOptions {
        raft: RaftConfig::fast(),
        token: Some("t".into()),
        data_dir: Some(dir.to_path_buf()),
        ..NetClusterOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_cluster_from_node_port_pairs_commits_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = WebSocketRaftCluster::start_localhost(ports(), options(dir.path()), |_| Counter::default())
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    for i in 1..=20 {
        leader.propose(i).await.unwrap();
    }
    for n in cluster.nodes() {
        assert_eq!(n.read(()).await.unwrap(), 210, "{}", n.id());
    }
    cluster.stop().await;
    assert!(dir.path().join("node1").is_dir(), "logs live under data_dir/<node id>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_cluster_from_node_port_pairs_commits_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = JsonRpcRaftCluster::start_localhost(ports(), options(dir.path()), |_| Counter::default())
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    for i in 1..=20 {
        leader.propose(i).await.unwrap();
    }
    for n in cluster.nodes() {
        assert_eq!(n.read(()).await.unwrap(), 210, "{}", n.id());
    }
    cluster.stop().await;
}
