//! A 3-node WebSocket cluster that finds its peers through each real discovery
//! backend (a config file, DNS from an in-process authoritative server, a real
//! etcd) elects and replicates; a node restarted on a new port is found again
//! through DNS (SRV) and through etcd.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft_cluster::{Cluster, RaftConfig};
use raft_core::NodeId;
use raft_discovery::testing::{DnsTestServer, EtcdServer};
use raft_discovery::{discovery_from_url, EtcdServiceDiscovery, NodeAddress, ServiceDiscovery};
use raft_storage::{FileStorage, Options};
use raft_transport_ws::{WsConfig, WsTransport};

mod support;

use support::Log;

type Net = Cluster<Log, FileStorage, WsTransport>;

fn ids() -> Vec<NodeId> {
    (1..=3).map(|i| NodeId::new(format!("node{i}"))).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where each node listens and which discovery it uses; both may change before a
/// restart (the transport factory reads them on every start).
#[derive(Clone, Default)]
struct Wiring {
    listen: Arc<Mutex<BTreeMap<NodeId, SocketAddr>>>,
    discovery: Arc<Mutex<BTreeMap<NodeId, Arc<dyn ServiceDiscovery>>>>,
}

impl Wiring {
    fn new(
        listen: impl IntoIterator<Item = (NodeId, SocketAddr)>,
        discovery: impl Fn(&NodeId) -> Arc<dyn ServiceDiscovery>,
    ) -> Self {
        let listen: BTreeMap<_, _> = listen.into_iter().collect();
        let discovery = listen.keys().map(|id| (id.clone(), discovery(id))).collect();
        Wiring {
            listen: Arc::new(Mutex::new(listen)),
            discovery: Arc::new(Mutex::new(discovery)),
        }
    }

    fn port(&self, id: &NodeId) -> u16 {
        self.listen.lock().unwrap()[id].port()
    }

    fn move_to(&self, id: &NodeId, port: u16) {
        self.listen.lock().unwrap().get_mut(id).unwrap().set_port(port);
    }
}

async fn start(wiring: &Wiring, dir: &std::path::Path, cluster_id: &str) -> Net {
    let root = dir.to_path_buf();
    let w = wiring.clone();
    let cluster_id = cluster_id.to_string();
    Cluster::start(
        ids(),
        RaftConfig::fast(),
        move |id| {
            FileStorage::open(root.join(id.as_str()), Options::default())
                .map_err(|e| raft_cluster::Error::Storage(Box::new(e)))
        },
        |_| Log::default(),
        move |id| {
            let listen = w.listen.lock().unwrap()[id];
            let discovery = w.discovery.lock().unwrap()[id].clone();
            WsTransport::new(id.clone(), WsConfig::new(listen, cluster_id.clone()), discovery)
        },
    )
    .await
    .unwrap()
}

/// Proposes `values` (retrying across leader changes), then waits until every
/// running node applied the same log.
async fn replicate(cluster: &Net, values: std::ops::Range<u64>) -> Vec<u64> {
    for v in values {
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries < 400, "proposal {v} never acknowledged");
            let Ok(leader) = cluster.wait_for_leader(Duration::from_secs(10)).await else {
                continue;
            };
            match leader.propose(v).await {
                Ok(_) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let want = leader.read(()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for n in cluster.nodes() {
        loop {
            if n.read(()).await.ok().as_ref() == Some(&want) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} never caught up", n.id());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    want
}

/// Kills a follower, lets `moved` publish its new port, restarts it there, and
/// checks that the cluster reaches it again (it must catch up on new entries).
async fn restart_on_new_port<F, Fut>(cluster: &mut Net, wiring: &Wiring, moved: F)
where
    F: FnOnce(NodeId, u16) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = replicate(cluster, 0..20).await;
    assert_eq!(before.len(), 20);
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let victim = ids().into_iter().find(|i| i != leader.id()).unwrap();
    cluster.kill(victim.as_str()).await;
    let old = wiring.port(&victim);
    let new = free_port();
    assert_ne!(old, new);
    wiring.move_to(&victim, new);
    moved(victim.clone(), new).await;
    let back = cluster.restart(victim.clone()).await.unwrap();
    // Entries written after the move can only reach it at its new address.
    let after = replicate(cluster, 100..120).await;
    assert_eq!(after.len(), 40);
    assert_eq!(
        back.read(()).await.unwrap(),
        after,
        "{victim} not reached at its new port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_found_through_a_config_file_elects_and_replicates() {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<(NodeId, SocketAddr)> = ids()
        .into_iter()
        .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
        .collect();
    let file = dir.path().join("cluster.json");
    let json: serde_json::Map<String, serde_json::Value> = listen
        .iter()
        .map(|(id, a)| {
            (
                id.to_string(),
                serde_json::json!({"host": a.ip().to_string(), "port": a.port()}),
            )
        })
        .collect();
    std::fs::write(&file, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let discovery = discovery_from_url(&format!("file://{}", file.display())).unwrap();
    let wiring = Wiring::new(listen, |_| discovery.clone());
    let mut cluster = start(&wiring, &dir.path().join("data"), "t30-file").await;
    assert_eq!(replicate(&cluster, 0..30).await.len(), 30);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_found_through_dns_names_on_one_port_elects_and_replicates() {
    // The suffix DNS form: every node on the same port, `{id}.raft.test` telling
    // them apart, so each listens on its own loopback address.
    let dns = DnsTestServer::start("raft.test").await.unwrap();
    let port = free_port();
    let mut listen = Vec::new();
    for (i, id) in ids().into_iter().enumerate() {
        let ip = Ipv4Addr::new(127, 0, 0, 1 + i as u8);
        dns.set_a(&format!("{id}.raft.test"), &[ip], 30).await.unwrap();
        listen.push((id, SocketAddr::from((ip, port))));
    }
    let discovery = discovery_from_url(&format!("dns://.raft.test:{port}?nameserver={}", dns.addr())).unwrap();
    let wiring = Wiring::new(listen, |_| discovery.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(&wiring, dir.path(), "t30-dns").await;
    assert_eq!(replicate(&cluster, 0..30).await.len(), 30);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_on_a_new_port_is_found_again_through_dns_srv() {
    let dns = Arc::new(DnsTestServer::start("raft.test").await.unwrap());
    let srv = "_raft._tcp.raft.test";
    let listen: Vec<(NodeId, SocketAddr)> = ids()
        .into_iter()
        .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
        .collect();
    let publish = |dns: Arc<DnsTestServer>, ports: Vec<(NodeId, u16)>| async move {
        let targets: Vec<(u16, String)> = ports.iter().map(|(id, p)| (*p, format!("{id}.raft.test"))).collect();
        let refs: Vec<(u16, &str)> = targets.iter().map(|(p, t)| (*p, t.as_str())).collect();
        // A 1 s TTL: peers ask again soon after a node moves.
        dns.set_srv(srv, &refs, 1).await.unwrap();
    };
    for (id, _) in &listen {
        dns.set_a(&format!("{id}.raft.test"), &[Ipv4Addr::LOCALHOST], 30)
            .await
            .unwrap();
    }
    publish(
        dns.clone(),
        listen.iter().map(|(id, a)| (id.clone(), a.port())).collect(),
    )
    .await;
    let discovery = discovery_from_url(&format!("dns+srv://{srv}?nameserver={}", dns.addr())).unwrap();
    assert_eq!(discovery.get_all_node_addresses().await.unwrap().len(), 3);
    let wiring = Wiring::new(listen, |_| discovery.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(&wiring, dir.path(), "t30-srv").await;
    let w = wiring.clone();
    let server = dns.clone();
    restart_on_new_port(&mut cluster, &wiring, |_, _| async move {
        let ports = w
            .listen
            .lock()
            .unwrap()
            .iter()
            .map(|(id, a)| (id.clone(), a.port()))
            .collect();
        publish(server, ports).await;
    })
    .await;
    cluster.stop().await;
    drop(dns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_found_through_etcd_replicates_and_finds_a_node_restarted_on_a_new_port() {
    let etcd = EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    let listen: Vec<(NodeId, SocketAddr)> = ids()
        .into_iter()
        .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
        .collect();
    // Each node has its own discovery (as separate processes would) and
    // registers itself under a lease before it starts.
    let node_discovery = |id: &NodeId| -> Arc<dyn ServiceDiscovery> {
        let _ = id;
        Arc::new(EtcdServiceDiscovery::new(etcd.config("/t30")).unwrap())
    };
    let wiring = Wiring::new(listen.clone(), node_discovery);
    for (id, addr) in &listen {
        let d = wiring.discovery.lock().unwrap()[id].clone();
        d.register_node(id, NodeAddress::new(addr.ip().to_string(), addr.port()))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(&wiring, dir.path(), "t30-etcd").await;
    let w = wiring.clone();
    let config = etcd.config("/t30");
    restart_on_new_port(&mut cluster, &wiring, |id, port| async move {
        // The restarted node is a new process: a new discovery that registers
        // its new address (the old lease dies with the old process).
        let d: Arc<dyn ServiceDiscovery> = Arc::new(EtcdServiceDiscovery::new(config).unwrap());
        d.register_node(&id, NodeAddress::new("127.0.0.1", port)).await.unwrap();
        w.discovery.lock().unwrap().insert(id, d);
    })
    .await;
    cluster.stop().await;
}
