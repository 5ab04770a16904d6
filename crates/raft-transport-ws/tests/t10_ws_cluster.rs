//! A real cluster over WebSocket on 127.0.0.1: election, replication, a leader kill,
//! and a node restarted on the same port that rejoins.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use raft_cluster::{Cluster, RaftConfig};
use raft_core::NodeId;
use raft_discovery::{NodeAddress, StaticServiceDiscovery};
use raft_storage::{FileStorage, Options};
use raft_transport_ws::{WsConfig, WsTransport};

mod support;

use support::Log;

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

async fn propose_with_retry(cluster: &Cluster<Log, FileStorage, WsTransport>, v: u64) {
    for _ in 0..200 {
        let Ok(leader) = cluster.wait_for_leader(Duration::from_secs(10)).await else {
            continue;
        };
        match leader.propose(v).await {
            Ok(_) => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("proposal {v} never acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_cluster_replicates_survives_leader_kill_and_rejoins_on_same_port() {
    let ports = free_ports(3);
    let ids: Vec<String> = (1..=3).map(|i| format!("node{i}")).collect();
    let discovery = Arc::new(StaticServiceDiscovery::new(
        ids.iter()
            .zip(&ports)
            .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p))),
    ));
    let addrs: BTreeMap<NodeId, u16> = ids.iter().zip(&ports).map(|(i, p)| (NodeId::new(i), *p)).collect();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut config = RaftConfig::fast();
    config.snapshot_interval = 300;
    let disc = discovery.clone();
    let mut cluster = Cluster::start(
        ids.clone(),
        config,
        move |id| {
            FileStorage::open(root.join(id.as_str()), Options::default())
                .map_err(|e| raft_cluster::Error::Storage(Box::new(e)))
        },
        |_| Log::default(),
        move |id| {
            let listen = format!("127.0.0.1:{}", addrs[id]).parse().unwrap();
            WsTransport::new(id.clone(), WsConfig::new(listen, "t10").with_token("tok"), disc.clone())
        },
    )
    .await
    .unwrap();

    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    // 1,000 commands from 8 concurrent clients.
    let mut tasks = Vec::new();
    for c in 0..8u64 {
        let h = leader.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..125u64 {
                h.propose(c * 1000 + i).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Kill the leader abruptly; the others elect a new one and keep writing.
    let old = leader.id().clone();
    cluster.kill(old.as_str()).await;
    for v in 10_000..10_050u64 {
        propose_with_retry(&cluster, v).await;
    }
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    assert_ne!(new_leader.id(), &old);
    // Restart the old leader on the same port: it rejoins and catches up.
    let back = cluster.restart(old.clone()).await.unwrap();
    let want = new_leader.read(()).await.unwrap();
    assert_eq!(want.len(), 1050);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(got) = back.read(()).await {
            if got == want {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "restarted node never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in cluster.nodes() {
        let got = n.read(()).await.unwrap();
        assert_eq!(got, want, "{} diverged", n.id());
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "a command was applied twice on {}", n.id());
    }
    cluster.stop().await;
}
