//! One scenario suite, run against both network transports on real sockets with
//! file storage: election, 1,000 commands from concurrent clients, a leader kill,
//! a restart from disk, a minority partition, and convergence with nothing lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use easyraft::cluster::{Faults, FaultyTransport, Transport};
use easyraft::discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use easyraft::prelude::*;
use easyraft::storage::{FileStorage, Options};
use easyraft::transport_jsonrpc::{JsonRpcConfig, JsonRpcTransport};
use easyraft::transport_ws::{WsConfig, WsTransport};
use easyraft::{BoxError, Error};

/// Every applied command, in order.
#[derive(Default)]
struct History(Vec<u64>);

impl StateMachine for History {
    type Command = u64;
    type Response = ();
    type Query = ();
    type QueryResponse = Vec<u64>;
    fn apply(&mut self, _: LogIndex, v: u64) {
        self.0.push(v);
    }
    fn query(&self, _: ()) -> Vec<u64> {
        self.0.clone()
    }
    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok(self.0.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>().into())
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        self.0 = data
            .chunks(8)
            .map(|c| <[u8; 8]>::try_from(c).map(u64::from_be_bytes))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

type Make<T> = fn(&NodeId, std::net::SocketAddr, Arc<dyn ServiceDiscovery>) -> T;

struct Suite<T: Transport> {
    cluster: Cluster<History, FileStorage, FaultyTransport<T>>,
    faults: Faults,
    ids: Vec<NodeId>,
    acked: Arc<std::sync::Mutex<BTreeSet<u64>>>,
    _dir: tempfile::TempDir,
}

impl<T: Transport> Suite<T> {
    async fn start(make: Make<T>) -> Self {
        let ls: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: BTreeMap<NodeId, u16> = ls
            .iter()
            .enumerate()
            .map(|(i, l)| (NodeId::new(format!("node{}", i + 1)), l.local_addr().unwrap().port()))
            .collect();
        drop(ls);
        let discovery: Arc<dyn ServiceDiscovery> = Arc::new(StaticServiceDiscovery::new(
            ports
                .iter()
                .map(|(id, p)| (id.clone(), NodeAddress::new("127.0.0.1", *p))),
        ));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let faults = Faults::new();
        let f = faults.clone();
        let p = ports.clone();
        let mut config = RaftConfig::fast();
        config.snapshot_interval = 200;
        let cluster = Cluster::start(
            ports.keys().cloned(),
            config,
            move |id| {
                FileStorage::open(root.join(id.as_str()), Options::default()).map_err(|e| Error::Storage(Box::new(e)))
            },
            |_| History::default(),
            move |id| {
                FaultyTransport::new(
                    id.clone(),
                    make(id, ([127, 0, 0, 1], p[id]).into(), discovery.clone()),
                    f.clone(),
                )
            },
        )
        .await
        .unwrap();
        Suite {
            cluster,
            faults,
            ids: ports.keys().cloned().collect(),
            acked: Arc::default(),
            _dir: dir,
        }
    }

    /// Proposes `values` from `clients` concurrent clients, each retrying on the
    /// leader it finds; records every acknowledged value.
    async fn write(&self, values: std::ops::Range<u64>, clients: u64) {
        let handles: Vec<RaftHandle<History>> = self.cluster.nodes().cloned().collect();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let hs = handles.clone();
            let acked = self.acked.clone();
            let mine: Vec<u64> = values.clone().filter(|v| v % clients == c).collect();
            tasks.push(tokio::spawn(async move {
                for v in mine {
                    let mut done = false;
                    for attempt in 0..400 {
                        let h = &hs[attempt % hs.len()];
                        if h.view().role != Role::Leader {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                        if h.propose(v).await.is_ok() {
                            acked.lock().unwrap().insert(v);
                            done = true;
                            break;
                        }
                    }
                    assert!(done, "value {v} never acknowledged");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    /// Waits until every running node holds the same history with every
    /// acknowledged value exactly once.
    async fn converge(&self) -> Vec<u64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut states = Vec::new();
            for n in self.cluster.nodes() {
                states.push(n.read(()).await.ok());
            }
            if let Some(Some(first)) = states.first() {
                if states.iter().all(|s| s.as_ref() == Some(first)) {
                    let set: BTreeSet<u64> = first.iter().copied().collect();
                    assert_eq!(set.len(), first.len(), "a command was applied twice");
                    let acked = self.acked.lock().unwrap().clone();
                    assert!(
                        acked.is_subset(&set),
                        "acknowledged writes lost: {:?}",
                        acked.difference(&set).collect::<Vec<_>>()
                    );
                    return first.clone();
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "nodes never converged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn run(mut self) {
        let leader = self.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
        self.write(0..1000, 8).await;
        assert_eq!(self.converge().await.len(), 1000);

        // Kill the leader; the others elect a new one and keep writing.
        let old = leader.id().clone();
        self.cluster.kill(old.as_str()).await;
        self.write(1000..1100, 4).await;
        // Restart it from its directory; it catches up.
        self.cluster.restart(old.clone()).await.unwrap();
        self.converge().await;

        // A minority partition: the cut-off node cannot commit, the majority can.
        let leader = self.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
        let minority = self.ids.iter().find(|id| *id != leader.id()).unwrap().clone();
        let majority: Vec<NodeId> = self.ids.iter().filter(|id| **id != minority).cloned().collect();
        self.faults.partition(&[std::slice::from_ref(&minority), &majority]);
        let lonely = self.cluster.node(minority.as_str()).unwrap().clone();
        assert!(
            lonely.propose(424_242).await.is_err(),
            "a minority node acknowledged a write"
        );
        self.write(1100..1200, 4).await;
        self.faults.heal();
        let history = self.converge().await;
        assert_eq!(history.len(), 1200);
        assert!(!history.contains(&424_242), "the minority's write must not appear");
        self.cluster.stop().await;
    }
}

fn ws(id: &NodeId, addr: std::net::SocketAddr, d: Arc<dyn ServiceDiscovery>) -> WsTransport {
    WsTransport::new(id.clone(), WsConfig::new(addr, "suite").with_token("t"), d)
}

fn jsonrpc(id: &NodeId, addr: std::net::SocketAddr, d: Arc<dyn ServiceDiscovery>) -> JsonRpcTransport {
    JsonRpcTransport::new(id.clone(), JsonRpcConfig::new(addr, "suite").with_token("t"), d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_over_websocket() {
    Suite::start(ws).await.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_over_jsonrpc() {
    Suite::start(jsonrpc).await.run().await;
}
