//! The WebSocket transport on loopback, each figure beside its baseline in the same run:
//!
//! - **One connection.** Round trips of an AppendEntries with 1 and with 64 entries
//!   (100-byte commands) over one WebSocket connection, binary (postcard batch) and
//!   JSON (envelope): the client encodes with `raft_wire`, the server
//!   decodes every frame as a node does and echoes it, the client decodes the echo
//!   (the servers and rounds live in `benches::net`, shared with the `jsonrpc` bench).
//!   `rtt` has one message in flight (latency); `pipelined` keeps 64 in flight
//!   (messages/s). The baseline is a plain TCP echo of the same encoded bytes with a
//!   4-byte length prefix and no encoding work (a window is written in one call, as
//!   the WebSocket client's feed-then-flush does; both servers write each echo). After each pair a `ratio` line gives
//!   both and WebSocket's time over TCP's.
//! - **A cluster.** Commits/s of a 3-node cluster over WebSocket on loopback (binary
//!   frames; JSON for one case), with `MemStorage` and with `FileStorage` (fsync on),
//!   driven by 1 and 64 concurrent proposers on the leader; beside the same cluster on
//!   the in-memory transport, whose ratio shows what the network costs.
//!
//! One element is one message echoed, or one proposal committed and applied on the
//! leader, so criterion's elements/s are messages/s or commits/s.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::net::{
    append_entries, rate, runtime, tcp_client, tcp_echo_server, tcp_rounds, ws_client, ws_echo_server, ws_rounds, Enc,
    Totals, WINDOW,
};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use raft_cluster::testing::Counter;
use raft_cluster::{MemNetwork, RaftConfig, RaftHandle, RaftNode, Transport};
use raft_core::{MemStorage, Membership, NodeId};
use raft_discovery::{NodeAddress, StaticServiceDiscovery};
use raft_storage::{FileStorage, LogStore, Options};
use raft_transport_ws::{Encoding, WsConfig, WsTransport};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn one_connection(c: &mut Criterion) {
    let rt = runtime();
    let (ws_addr, tcp_addr) = rt.block_on(async { (ws_echo_server().await, tcp_echo_server().await) });
    let mut ws = rt.block_on(ws_client(ws_addr));
    let mut tcp = rt.block_on(tcp_client(tcp_addr));
    let mut totals = Totals::new();
    for entries in [1u64, 64] {
        let m = append_entries(entries);
        for enc in [Enc::Binary, Enc::Json] {
            let bytes: Vec<u8> = match enc.frame(&m, 0) {
                WsMessage::Binary(b) => b.to_vec(),
                WsMessage::Text(t) => t.as_bytes().to_vec(),
                _ => unreachable!(),
            };
            let mut g = c.benchmark_group(format!("ws/append-{entries}/{}", enc.name()));
            g.sampling_mode(SamplingMode::Flat);
            for (mode, window) in [("rtt", 1usize), ("pipelined", WINDOW)] {
                g.throughput(Throughput::Elements(window as u64));
                let ws_id = format!("append-{entries}/{}/{mode}/websocket", enc.name());
                let tcp_id = format!("append-{entries}/{}/{mode}/tcp-echo", enc.name());
                let mut ws_total = (0u64, 0f64);
                g.bench_function(format!("{mode}/websocket"), |b| {
                    b.iter_custom(|iters| {
                        let t = rt.block_on(ws_rounds(&mut ws, enc, &m, window, iters));
                        ws_total.0 += iters * window as u64;
                        ws_total.1 += t.as_secs_f64();
                        t
                    })
                });
                let mut tcp_total = (0u64, 0f64);
                g.bench_function(format!("{mode}/tcp-echo"), |b| {
                    b.iter_custom(|iters| {
                        let t = rt.block_on(tcp_rounds(&mut tcp, &bytes, window, iters));
                        tcp_total.0 += iters * window as u64;
                        tcp_total.1 += t.as_secs_f64();
                        t
                    })
                });
                totals.insert(ws_id.clone(), ws_total);
                totals.insert(tcp_id.clone(), tcp_total);
                if let (Some(w), Some(t)) = (rate(&totals, &ws_id), rate(&totals, &tcp_id)) {
                    println!(
                        "ratio ws/append-{entries}/{}/{mode} ({} B per message): websocket {w:.0} msg/s ({:.1} us each) \
                         vs tcp-echo {t:.0} msg/s ({:.1} us each): websocket takes {:.2}x the TCP time",
                        enc.name(),
                        bytes.len(),
                        1e6 / w,
                        1e6 / t,
                        t / w
                    );
                }
            }
            g.finish();
        }
    }
    rt.block_on(async {
        let _ = ws.close(None).await;
    });
}

// ---------------------------------------------------------------- a cluster

type Node = RaftHandle<Counter>;

/// Timeouts roomy enough that a busy machine does not trigger elections mid-bench.
fn raft_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        ..RaftConfig::default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Net {
    WsBinary,
    WsJson,
    InMemory,
}

impl Net {
    fn name(self) -> &'static str {
        match self {
            Net::WsBinary => "ws-binary",
            Net::WsJson => "ws-json",
            Net::InMemory => "in-memory",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Mem,
    File,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Mem => "mem",
            Store::File => "file-fsync",
        }
    }
}

async fn start_one<S: LogStore + Send + 'static, T: Transport>(id: &NodeId, storage: S, transport: T) -> Node {
    let voters = Membership::with_voters(["node1", "node2", "node3"]);
    RaftNode::start(
        id.clone(),
        raft_config(),
        storage,
        Counter::default(),
        transport,
        Some(voters),
    )
    .await
    .expect("node starts")
}

async fn start_cluster(net: Net, store: Store, dir: &std::path::Path) -> Vec<Node> {
    let ids: Vec<NodeId> = ["node1", "node2", "node3"].map(NodeId::new).into();
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let mem = MemNetwork::new();
    let mut nodes = Vec::new();
    for id in &ids {
        let node = match net {
            Net::InMemory => {
                let t = mem.transport(id.clone());
                match store {
                    Store::Mem => start_one(id, MemStorage::default(), t).await,
                    Store::File => start_one(id, file_storage(dir, id), t).await,
                }
            }
            Net::WsBinary | Net::WsJson => {
                let mut cfg = WsConfig::new("127.0.0.1:0".parse().expect("addr"), "bench");
                cfg.encoding = if net == Net::WsJson {
                    Encoding::Json
                } else {
                    Encoding::Binary
                };
                let t = WsTransport::new(id.clone(), cfg, discovery.clone());
                let node = match store {
                    Store::Mem => start_one(id, MemStorage::default(), t.clone()).await,
                    Store::File => start_one(id, file_storage(dir, id), t.clone()).await,
                };
                let port = t.local_addr().expect("bound").port();
                raft_discovery::ServiceDiscovery::register_node(&*discovery, id, NodeAddress::new("127.0.0.1", port))
                    .await
                    .expect("register");
                node
            }
        };
        nodes.push(node);
    }
    nodes
}

fn file_storage(dir: &std::path::Path, id: &NodeId) -> FileStorage {
    FileStorage::open(dir.join(id.as_str()), Options::default()).expect("file storage")
}

async fn wait_for_leader(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(i) = nodes.iter().position(|n| n.view().role == raft_core::Role::Leader) {
            if nodes[i].propose(0).await.is_ok() {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `total` proposals spread over `proposers` concurrent tasks; returns the wall time.
async fn round(nodes: &[Node], leader: usize, proposers: usize, total: u64) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..proposers as u64)
        .map(|p| {
            let n = total / proposers as u64 + u64::from(p < total % proposers as u64);
            let nodes = nodes.to_vec();
            tokio::spawn(async move {
                let mut leader = leader;
                for _ in 0..n {
                    benches::propose_on_leader(&nodes, &mut leader, 1).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("proposer task");
    }
    start.elapsed()
}

fn cluster(c: &mut Criterion) {
    let rt = runtime();
    let mut totals = Totals::new();
    let cases = [
        (Net::WsBinary, Store::Mem, &[1usize, 64][..]),
        (Net::InMemory, Store::Mem, &[64][..]),
        (Net::WsJson, Store::Mem, &[64][..]),
        (Net::WsBinary, Store::File, &[1, 64][..]),
        (Net::InMemory, Store::File, &[64][..]),
    ];
    for (net, store, proposers) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes = rt.block_on(start_cluster(net, store, dir.path()));
        let leader = rt.block_on(wait_for_leader(&nodes));
        let mut g = c.benchmark_group(format!("ws-cluster/{}/{}", store.name(), net.name()));
        g.sample_size(10).sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Elements(1));
        for &p in proposers {
            let mut total = (0u64, 0f64);
            g.bench_function(format!("proposers/{p}"), |b| {
                b.iter_custom(|iters| {
                    let t = rt.block_on(round(&nodes, leader, p, iters));
                    total.0 += iters;
                    total.1 += t.as_secs_f64();
                    t
                })
            });
            totals.insert(format!("{}/{}/{p}", store.name(), net.name()), total);
        }
        g.finish();
        rt.block_on(async {
            for n in &nodes {
                n.shutdown().await;
            }
        });
    }
    for store in [Store::Mem, Store::File] {
        for p in [1usize, 64] {
            let ws = rate(&totals, &format!("{}/ws-binary/{p}", store.name()));
            if let Some(ws) = ws {
                print!(
                    "commits ws-cluster/{}/ws-binary/proposers/{p}: {ws:.0} commits/s",
                    store.name()
                );
                if let Some(mem) = rate(&totals, &format!("{}/in-memory/{p}", store.name())) {
                    print!(" vs in-memory transport {mem:.0} commits/s = {:.2} of it", ws / mem);
                }
                if let Some(json) = rate(&totals, &format!("{}/ws-json/{p}", store.name())) {
                    print!("; ws-json {json:.0} commits/s = {:.2} of binary", json / ws);
                }
                println!();
            }
        }
    }
}

criterion_group!(benches, one_connection, cluster);
criterion_main!(benches);
