//! The JSON-RPC transport and the kv service on loopback, each figure beside a plain
//! TCP echo measured in the same run:
//!
//! - **One connection** (`transport/append-{1,64}/{rtt,pipelined}`). An AppendEntries
//!   with 1 and with 64 entries (100-byte commands), sent by a `JsonRpcTransport`
//!   (node1) over its one WebSocket JSON-RPC connection to another `JsonRpcTransport`
//!   whose server checks each call and delivers it into a running node's `Inbox`;
//!   `send` returns once the batch is on the connection, with up to `max_in_flight`
//!   (8) batches awaiting their acknowledgements, so consecutive rounds overlap as a
//!   node's sends to one peer do (with one in flight, a round would be send → deliver
//!   → acknowledgement). `rtt` sends one message per `send`;
//!   `pipelined` sends a window of 64 (one JSON-RPC batch, as the transport sends a
//!   queued batch). Beside it, in the same group, the `ws` bench's WebSocket echo of
//!   the same message in binary and JSON frames (`benches::net`), and a TCP echo of
//!   each encoding's bytes (4-byte length prefix, no encoding work), so the report has
//!   raw TCP, WebSocket-binary, WebSocket-JSON and JSON-RPC side by side. The WebSocket
//!   servers echo the whole frame back; the JSON-RPC server answers
//!   `{"accepted":true}`, so its return path is shorter than its TCP baseline's.
//! - **kv put** (`kv-put`). Throughput and p50/p99 latency of `kv_put` through the kv
//!   service's JSON-RPC API on a 3-node loopback cluster (`examples::runner::
//!   LocalCluster`, `FileStorage` with fsync on), at 1, 16 and 256 concurrent clients,
//!   each its own jsonrpsee HTTP client (keep-alive) to the leader's API port
//!   (`examples::serve`), one call in flight per client; beside a TCP echo of the same request bytes (1 and 64 in flight).
//!   Latencies are over every put of the run (warm-up included).
//!
//! One element is one message delivered or echoed, or one put acknowledged, so
//! criterion's elements/s are messages/s or puts/s. Lines starting `ratio` give each
//! figure over its TCP baseline.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::net::{
    append_entries, rate, runtime, tcp_client, tcp_echo_server, tcp_rounds, ws_client, ws_echo_server, ws_rounds, Enc,
    Totals, WINDOW,
};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use examples::runner::LocalCluster;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use raft_cluster::{BoxError, RaftConfig, RaftHandle, RaftNode, StateMachine, Transport};
use raft_core::{LogIndex, MemStorage, Message, NodeId};
use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_transport_jsonrpc::{method_name, JsonRpcConfig, JsonRpcTransport};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Timeouts roomy enough that a busy machine does not trigger elections mid-bench.
fn raft_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        ..RaftConfig::default()
    }
}

// ---------------------------------------------------------------- one connection

/// The receiving node's state machine: it never applies anything (the node only
/// needs to run, so that its transport has an inbox to deliver into).
#[derive(Default)]
struct Nothing;

impl StateMachine for Nothing {
    type Command = ();
    type Response = ();
    type Query = ();
    type QueryResponse = ();
    fn apply(&mut self, _: LogIndex, _: ()) {}
    fn query(&self, _: ()) {}
    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok(Bytes::new())
    }
    fn restore(&mut self, _: &[u8]) -> Result<(), BoxError> {
        Ok(())
    }
}

/// node1's transport (never started: it only sends) and node2, a running node with
/// no membership (it never campaigns) whose `JsonRpcTransport` server delivers into
/// its inbox. Each AppendEntries is delivered, rejected (node2 has no entry 1000) and
/// answered to node1, which is not reachable, so the answers stop at node2's outbound
/// queue: node2's `messages_sent` counts the messages it received.
struct JsonRpcLink {
    client: JsonRpcTransport,
    to: NodeId,
    node: RaftHandle<Nothing>,
}

async fn jsonrpc_link() -> JsonRpcLink {
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let any = "127.0.0.1:0".parse().expect("addr");
    let to = NodeId::new("node2");
    let server = JsonRpcTransport::new(to.clone(), JsonRpcConfig::new(any, "bench"), discovery.clone());
    let node = RaftNode::start(
        to.clone(),
        raft_config(),
        MemStorage::default(),
        Nothing,
        server.clone(),
        None,
    )
    .await
    .expect("node2 starts");
    let port = server.local_addr().expect("bound").port();
    discovery
        .register_node(&to, NodeAddress::new("127.0.0.1", port))
        .await
        .expect("register");
    let client = JsonRpcTransport::new("node1", JsonRpcConfig::new(any, "bench"), discovery);
    let link = JsonRpcLink { client, to, node };
    // Connect, and make sure messages really reach node2's core.
    link.client
        .send(&link.to, vec![append_entries(1)])
        .await
        .expect("delivered");
    let deadline = Instant::now() + Duration::from_secs(10);
    while link.node.view().term != 7 {
        assert!(Instant::now() < deadline, "node2 never saw the AppendEntries");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    link
}

/// `rounds` sends of `window` copies of `m` (one JSON-RPC call, or one batch of
/// `window` calls); returns the time.
async fn jsonrpc_rounds(link: &JsonRpcLink, m: &Message, window: usize, rounds: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        link.client
            .send(&link.to, vec![m.clone(); window])
            .await
            .expect("delivered");
    }
    start.elapsed()
}

/// The HTTP body the JSON-RPC client sends for `m`.
fn jsonrpc_request(m: &Message) -> Vec<u8> {
    let mut params = raft_wire::to_payload(m);
    params.insert("to".into(), Value::String(m.to.to_string()));
    let method = method_name(m.body.kind()).expect("a Raft method");
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params})).expect("json")
}

/// What each line of the one-connection groups sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Over {
    WsBinary,
    WsJson,
    JsonRpc,
}

impl Over {
    fn name(self) -> &'static str {
        match self {
            Over::WsBinary => "ws-binary",
            Over::WsJson => "ws-json",
            Over::JsonRpc => "jsonrpc",
        }
    }
}

fn one_connection(c: &mut Criterion) {
    let rt = runtime();
    let (ws_addr, tcp_addr) = rt.block_on(async { (ws_echo_server().await, tcp_echo_server().await) });
    let mut ws = rt.block_on(ws_client(ws_addr));
    let mut tcp = rt.block_on(tcp_client(tcp_addr));
    let link = rt.block_on(jsonrpc_link());
    let mut totals = Totals::new();
    let mut sent_to_node2 = 0u64;
    let sent_before = link.node.metrics().messages_sent;
    for entries in [1u64, 64] {
        let m = append_entries(entries);
        let bytes = |over: Over| -> Vec<u8> {
            match over {
                Over::WsBinary | Over::WsJson => {
                    let enc = if over == Over::WsBinary { Enc::Binary } else { Enc::Json };
                    match enc.frame(&m, 0) {
                        WsMessage::Binary(b) => b.to_vec(),
                        WsMessage::Text(t) => t.as_bytes().to_vec(),
                        _ => unreachable!(),
                    }
                }
                Over::JsonRpc => jsonrpc_request(&m),
            }
        };
        for (mode, window) in [("rtt", 1usize), ("pipelined", WINDOW)] {
            let group = format!("transport/append-{entries}/{mode}");
            let mut g = c.benchmark_group(&group);
            g.sampling_mode(SamplingMode::Flat);
            g.throughput(Throughput::Elements(window as u64));
            let mut sizes = BTreeMap::new();
            for over in [Over::WsBinary, Over::WsJson, Over::JsonRpc] {
                let raw = bytes(over);
                sizes.insert(over.name(), raw.len());
                let mut total = (0u64, 0f64);
                g.bench_function(over.name(), |b| {
                    b.iter_custom(|iters| {
                        let t = match over {
                            Over::WsBinary => rt.block_on(ws_rounds(&mut ws, Enc::Binary, &m, window, iters)),
                            Over::WsJson => rt.block_on(ws_rounds(&mut ws, Enc::Json, &m, window, iters)),
                            Over::JsonRpc => rt.block_on(jsonrpc_rounds(&link, &m, window, iters)),
                        };
                        total.0 += iters * window as u64;
                        total.1 += t.as_secs_f64();
                        t
                    })
                });
                if over == Over::JsonRpc {
                    sent_to_node2 += total.0;
                }
                totals.insert(format!("{group}/{}", over.name()), total);
                let mut tcp_total = (0u64, 0f64);
                g.bench_function(format!("tcp-echo/{}-bytes", over.name()), |b| {
                    b.iter_custom(|iters| {
                        let t = rt.block_on(tcp_rounds(&mut tcp, &raw, window, iters));
                        tcp_total.0 += iters * window as u64;
                        tcp_total.1 += t.as_secs_f64();
                        t
                    })
                });
                totals.insert(format!("{group}/tcp-echo/{}", over.name()), tcp_total);
            }
            g.finish();
            let mut line = format!("ratio {group}:");
            for over in [Over::WsBinary, Over::WsJson, Over::JsonRpc] {
                let name = over.name();
                if let (Some(x), Some(t)) = (
                    rate(&totals, &format!("{group}/{name}")),
                    rate(&totals, &format!("{group}/tcp-echo/{name}")),
                ) {
                    line.push_str(&format!(
                        " {name} {:.1} us/msg ({} B) = {:.2}x tcp-echo of its bytes ({:.1} us);",
                        1e6 / x,
                        sizes[name],
                        t / x,
                        1e6 / t
                    ));
                }
            }
            println!("{}", line.trim_end_matches(';'));
        }
    }
    // Every message JSON-RPC acknowledged reached node2's core (one answer each).
    let deadline = Instant::now() + Duration::from_secs(10);
    let answered = loop {
        let n = link.node.metrics().messages_sent - sent_before;
        if n >= sent_to_node2 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    println!("delivered: node2's core answered {answered} of the {sent_to_node2} AppendEntries JSON-RPC acknowledged");
    assert!(
        answered >= sent_to_node2,
        "messages acknowledged over JSON-RPC but not delivered"
    );
    rt.block_on(async {
        let _ = ws.close(None).await;
        link.node.shutdown().await;
        link.client.stop().await;
    });
}

// ---------------------------------------------------------------- kv put

use examples::runner::TOKEN;
const VALUE_BYTES: usize = 100;

fn kv_client(port: u16) -> HttpClient {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header"),
    );
    HttpClientBuilder::default()
        .set_headers(h)
        .request_timeout(Duration::from_secs(30))
        .build(format!("http://127.0.0.1:{port}"))
        .expect("kv client")
}

fn put_params(key: String, value: &str) -> ObjectParams {
    let mut p = ObjectParams::new();
    p.insert("key", key).expect("param");
    p.insert("value", value).expect("param");
    p
}

/// `total` puts spread over `clients`; returns the wall time, and appends each put's
/// latency to `latencies`.
async fn put_round(
    clients: &[Arc<HttpClient>],
    total: u64,
    value: &Arc<String>,
    seq: &Arc<std::sync::atomic::AtomicU64>,
    latencies: &Arc<Mutex<Vec<Duration>>>,
) -> Duration {
    let n = clients.len() as u64;
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let count = total / n + u64::from((i as u64) < total % n);
            let (client, value, seq, latencies) = (client.clone(), value.clone(), seq.clone(), latencies.clone());
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let k = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let t = Instant::now();
                    let r: Value = client
                        .request("kv_put", put_params(format!("key-{k:012}"), &value))
                        .await
                        .expect("kv_put acknowledged");
                    mine.push(t.elapsed());
                    assert_eq!(r["ok"], json!(true));
                }
                latencies.lock().expect("latencies").extend(mine);
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn kv_put(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let local = rt
        .block_on(LocalCluster::start(
            3,
            Some(dir.path().to_path_buf()),
            raft_config(),
            examples::kv::rpc,
        ))
        .expect("kv cluster starts");
    let leader = rt
        .block_on(local.cluster.wait_for_leader(Duration::from_secs(60)))
        .expect("a leader");
    let port = local.ports[leader.id().as_str()];
    let tcp_addr = rt.block_on(tcp_echo_server());
    let mut tcp = rt.block_on(tcp_client(tcp_addr));
    let value = Arc::new("v".repeat(VALUE_BYTES));
    let request = serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 0, "method": "kv_put",
        "params": {"key": "key-000000000000", "value": *value},
    }))
    .expect("json");
    let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut totals = Totals::new();
    let mut g = c.benchmark_group("kv-put");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for (name, window) in [("tcp-echo/rtt", 1usize), ("tcp-echo/pipelined", WINDOW)] {
        g.throughput(Throughput::Elements(window as u64));
        let mut total = (0u64, 0f64);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let t = rt.block_on(tcp_rounds(&mut tcp, &request, window, iters));
                total.0 += iters * window as u64;
                total.1 += t.as_secs_f64();
                t
            })
        });
        totals.insert(name.to_string(), total);
    }
    g.throughput(Throughput::Elements(1));
    let mut figures = Vec::new();
    for clients in [1usize, 16, 256] {
        let conns: Vec<Arc<HttpClient>> =
            rt.block_on(async { (0..clients).map(|_| Arc::new(kv_client(port))).collect() });
        let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let mut total = (0u64, 0f64);
        g.bench_function(format!("clients/{clients}"), |b| {
            b.iter_custom(|iters| {
                let t = rt.block_on(put_round(&conns, iters, &value, &seq, &latencies));
                total.0 += iters;
                total.1 += t.as_secs_f64();
                t
            })
        });
        let mut l = latencies.lock().expect("latencies").clone();
        l.sort();
        figures.push((clients, total, percentile(&l, 0.5), percentile(&l, 0.99), l.len()));
    }
    g.finish();
    let rtt = rate(&totals, "tcp-echo/rtt").map_or(0.0, |r| 1e6 / r);
    let piped = rate(&totals, "tcp-echo/pipelined").unwrap_or(0.0);
    for (clients, (n, s), p50, p99, count) in figures {
        if n == 0 {
            continue; // filtered out on the command line: nothing measured
        }
        let puts = n as f64 / s.max(1e-9);
        println!(
            "ratio kv-put/clients/{clients} ({} B request): {puts:.0} puts/s = {:.4} of tcp-echo pipelined ({piped:.0} msg/s); \
             p50 {:.0} us = {:.1}x tcp-echo rtt ({rtt:.1} us), p99 {:.0} us = {:.1}x ({count} puts)",
            request.len(),
            puts / piped.max(1e-9),
            p50.as_secs_f64() * 1e6,
            p50.as_secs_f64() * 1e6 / rtt.max(1e-9),
            p99.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6 / rtt.max(1e-9),
        );
    }
    rt.block_on(async {
        let mut local = local;
        local.cluster.stop().await;
    });
}

criterion_group!(benches, one_connection, kv_put);
criterion_main!(benches);
