//! What the WebSocket transport's tests share: a state machine that records every
//! applied command, nodes and clusters on 127.0.0.1 ports picked by the OS, a raw
//! HTTP/1.1 GET, a raw WebSocket client handshake, and polling waits.
//!
//! Every wait polls a condition under a generous deadline: these tests run on a
//! shared, noisy machine and never assert on timing.
// Each test binary uses its own part of the harness; `pub` here means "shared by
// the tests", not a crate API.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft_cluster::{BoxError, RaftConfig, RaftHandle, RaftNode, StateMachine};
use raft_core::{LogIndex, MemStorage, Membership, NodeId};
use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_storage::LogStore;
use raft_transport_ws::{WsConfig, WsTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, Instant};

/// How long any single condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Records every applied command, to compare the nodes' states.
#[derive(Default)]
pub struct Log(pub Vec<u64>);

impl StateMachine for Log {
    type Command = u64;
    type Response = LogIndex;
    type Query = ();
    type QueryResponse = Vec<u64>;
    fn apply(&mut self, index: LogIndex, cmd: u64) -> LogIndex {
        self.0.push(cmd);
        index
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

/// A node of the tests.
pub type Node = RaftHandle<Log>;

/// `node1` .. `node{n}`.
pub fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| NodeId::new(format!("node{i}"))).collect()
}

/// Fast elections, but with room for a loaded machine (a WebSocket hop costs more
/// than the in-memory network's).
pub fn raft_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(30),
        request_timeout: Duration::from_secs(5),
        ..RaftConfig::fast()
    }
}

/// A transport config on `127.0.0.1:0` with short reconnect delays.
pub fn ws_config(cluster: &str) -> WsConfig {
    let mut c = WsConfig::new("127.0.0.1:0".parse().unwrap(), cluster);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(300);
    c
}

/// Ports nobody listens on (bound and released at once): peers that never come up.
pub fn dead_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Starts one node on `127.0.0.1:0` with in-memory storage, a member of `voters`,
/// and registers its address in `discovery`.
pub async fn start_node(
    id: &str,
    voters: &[NodeId],
    cfg: WsConfig,
    discovery: &Arc<StaticServiceDiscovery>,
) -> (Node, WsTransport) {
    start_node_with(id, voters, raft_config(), cfg, discovery, MemStorage::default()).await
}

/// [`start_node`] with the given storage (e.g. a `FileStorage` to restart from).
pub async fn start_node_with<S: LogStore + Send + 'static>(
    id: &str,
    voters: &[NodeId],
    raft: RaftConfig,
    cfg: WsConfig,
    discovery: &Arc<StaticServiceDiscovery>,
    storage: S,
) -> (Node, WsTransport) {
    let transport = WsTransport::new(id, cfg, discovery.clone());
    let node = start_with_transport(id, voters, raft, transport.clone(), &transport, discovery, storage).await;
    (node, transport)
}

/// Starts a node over `transport` (which may wrap `ws`), then registers the address
/// `ws` is bound to in `discovery`.
pub async fn start_with_transport<S: LogStore + Send + 'static, T: raft_cluster::Transport>(
    id: &str,
    voters: &[NodeId],
    raft: RaftConfig,
    transport: T,
    ws: &WsTransport,
    discovery: &Arc<StaticServiceDiscovery>,
    storage: S,
) -> Node {
    let node = RaftNode::start(
        id,
        raft,
        storage,
        Log::default(),
        transport,
        Some(Membership::with_voters(voters.iter().cloned())),
    )
    .await
    .expect("node starts");
    let addr = ws.local_addr().expect("bound");
    discovery
        .register_node(&NodeId::new(id), NodeAddress::new("127.0.0.1", addr.port()))
        .await
        .unwrap();
    node
}

/// A lone `node1` whose fellow voters `node2` and `node3` never come up: it stays a
/// follower (pre-vote keeps its term where it is), so any change of its term or
/// commit index is the work of the messages a test sends it.
pub async fn lone_follower(cfg: WsConfig) -> (Node, SocketAddr) {
    let dead = dead_ports(2);
    let discovery = Arc::new(StaticServiceDiscovery::new([
        ("node2", NodeAddress::new("127.0.0.1", dead[0])),
        ("node3", NodeAddress::new("127.0.0.1", dead[1])),
    ]));
    let (node, transport) = start_node("node1", &ids(3), cfg, &discovery).await;
    (node, transport.local_addr().unwrap())
}

/// Polls `cond` every 10 ms until it holds; panics after `PATIENCE` naming `what`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {PATIENCE:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until a node leads and the others follow it.
pub async fn leader_of(nodes: &[Node]) -> Node {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let views: Vec<_> = nodes.iter().map(|n| n.view()).collect();
        if let Some(l) = nodes
            .iter()
            .zip(&views)
            .find(|(_, v)| v.running && v.role == raft_core::Role::Leader)
        {
            let term = l.1.term;
            let agree = views
                .iter()
                .filter(|v| v.term == term && v.leader.as_ref() == Some(l.0.id()))
                .count();
            if agree * 2 > nodes.len() {
                return l.0.clone();
            }
        }
        assert!(Instant::now() < deadline, "no leader after {PATIENCE:?}: {views:?}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// Proposes `v` through whichever node leads, retrying across elections.
pub async fn propose(nodes: &[Node], v: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let leader = leader_of(nodes).await;
        match leader.propose(v).await {
            Ok(_) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "proposal {v} never acknowledged: {e}");
                sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Waits until every node has applied exactly `want`.
pub async fn converge(nodes: &[Node], want: &[u64]) {
    for n in nodes {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(got) = n.read(()).await {
                if got == want {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{} never caught up", n.id());
            sleep(Duration::from_millis(30)).await;
        }
    }
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no HTTP response"))??;
    parse_response(&buf)
}

/// Splits a raw HTTP response into status code and body.
pub fn parse_response(buf: &[u8]) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(buf);
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP response: {text:?}"),
        )
    };
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .ok_or_else(bad)?;
    Ok((status, body))
}

/// The `Sec-WebSocket-Key` a raw handshake sends (any 16 bytes, base64).
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A client-to-server WebSocket frame (FIN set, masked as clients must).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Keeps `discovery` typed as the trait object the transport takes.
pub fn as_dyn(d: &Arc<StaticServiceDiscovery>) -> Arc<dyn ServiceDiscovery> {
    d.clone()
}
