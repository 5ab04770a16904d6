//! End to end through the runtime: a 3-node cluster in one process on the in-memory
//! transport, with `MemStorage` and with `FileStorage` (fsync on), driven by 1, 16
//! and 256 concurrent proposers on the leader. One element is one acknowledged
//! proposal (committed and applied on the leader), so criterion's elements/s are
//! commits/s.
//!
//! Every proposal's latency is recorded as well (only while all proposers are busy);
//! after each benchmark it prints `latency ...: p50 .. p99 ..`; at 256 proposers the
//! persists per committed entry from `handle.metrics()` (a persist is one Ready
//! written: an append and/or a hard state, each its own `fdatasync` in `FileStorage`)
//! and the real `fdatasync`/directory-fsync calls per committed entry, counted by a
//! `Vfs` wrapper; and at the end `ratio` lines: MemStorage over FileStorage
//! throughput. Set `EASYRAFT_BENCH_DIR` to put the data directories on another disk
//! (default: the system temp dir).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::CountingVfs;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use raft_cluster::testing::Counter;
use raft_cluster::{Cluster, MemNetwork, MemTransport, Metrics, RaftHandle};
use raft_core::{MemStorage, NodeId};
use raft_storage::{FileStorage, LogStore, Options};
use tokio::runtime::Runtime;

const PROPOSERS: [usize; 3] = [1, 16, 256];

type Node = RaftHandle<Counter>;

/// Real fsyncs per node, when the storage counts them.
type Syncs = BTreeMap<NodeId, Arc<AtomicU64>>;

/// `total` proposals spread over `proposers` concurrent tasks; returns the wall time
/// and each proposal's latency.
async fn round(nodes: &[Node], leader: usize, proposers: usize, total: u64) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..proposers as u64)
        .map(|p| {
            let n = total / proposers as u64 + u64::from(p < total % proposers as u64);
            let nodes = nodes.to_vec();
            tokio::spawn(async move {
                let mut leader = leader;
                let mut latencies = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let t = Instant::now();
                    benches::propose_on_leader(&nodes, &mut leader, 1).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total as usize);
    for t in tasks {
        latencies.extend(t.await.expect("proposer task"));
    }
    (start.elapsed(), latencies)
}

fn synced(syncs: &Syncs, id: &NodeId) -> u64 {
    syncs.get(id).map_or(0, |s| s.load(Ordering::Relaxed))
}

/// Throughput (proposals, seconds) per "storage/proposers", for the ratio lines.
type Totals = BTreeMap<(usize, &'static str), (u64, f64)>;

fn bench_storage<S: LogStore + Send + 'static>(
    c: &mut Criterion,
    rt: &Runtime,
    totals: &mut Totals,
    storage: &'static str,
    syncs: &Syncs,
    make_storage: impl Fn(&NodeId) -> raft_cluster::Result<S> + Send + Sync + 'static,
) {
    let net = MemNetwork::new();
    let mut cluster = rt
        .block_on(Cluster::start(
            ["node1", "node2", "node3"],
            benches::cluster_config(),
            make_storage,
            |_| Counter::default(),
            move |id| -> MemTransport { net.transport(id.clone()) },
        ))
        .expect("cluster starts");
    let leader = rt
        .block_on(cluster.wait_for_leader(Duration::from_secs(30)))
        .expect("a leader");
    let nodes: Vec<Node> = cluster.nodes().cloned().collect();
    let leader_at = nodes
        .iter()
        .position(|n| n.id() == leader.id())
        .expect("leader is a node");

    let mut g = c.benchmark_group(format!("cluster/{storage}"));
    // A commit with fsync takes milliseconds: few, equal samples keep the run short.
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for proposers in PROPOSERS {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let before: Vec<Metrics> = nodes.iter().map(Node::metrics).collect();
        let syncs_before: Vec<u64> = nodes.iter().map(|n| synced(syncs, n.id())).collect();
        let mut total = (0u64, 0f64);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("proposers/{proposers}"), |b| {
            b.iter_custom(|iters| {
                let (elapsed, lat) = rt.block_on(round(&nodes, leader_at, proposers, iters));
                total.0 += iters;
                total.1 += elapsed.as_secs_f64();
                // Only rounds that keep every proposer busy say what latency under
                // that concurrency is.
                if iters >= proposers as u64 {
                    latencies.lock().expect("latencies").extend(lat);
                }
                elapsed
            });
        });
        totals.insert((proposers, storage), total);
        let mut lat = std::mem::take(&mut *latencies.lock().expect("latencies"));
        lat.sort_unstable();
        if lat.is_empty() {
            println!("latency cluster/{storage}/proposers/{proposers}: no full round measured");
        } else {
            println!(
                "latency cluster/{storage}/proposers/{proposers}: p50 {:.3} ms, p99 {:.3} ms over {} proposals",
                benches::load::percentile(&lat, 0.50).as_secs_f64() * 1e3,
                benches::load::percentile(&lat, 0.99).as_secs_f64() * 1e3,
                lat.len()
            );
        }
        if proposers == 256 {
            for ((node, before), syncs_before) in nodes.iter().zip(&before).zip(&syncs_before) {
                let now = node.metrics();
                let persists = now.persists - before.persists;
                let applied = (now.applied - before.applied).max(1);
                let role = if node.id() == leader.id() { "leader" } else { "follower" };
                let fsyncs = match syncs.get(node.id()) {
                    Some(_) => {
                        let n = synced(syncs, node.id()) - syncs_before;
                        format!(", fsyncs {n} / {applied} = {:.4}", n as f64 / applied as f64)
                    }
                    None => String::new(),
                };
                println!(
                    "per committed entry cluster/{storage}/proposers/256 on {} ({role}): persists {persists} / {applied} = {:.4}{fsyncs}",
                    node.id(),
                    persists as f64 / applied as f64
                );
            }
        }
    }
    g.finish();
    rt.block_on(cluster.stop());
}

fn cluster(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut totals = Totals::new();
    bench_storage(c, &rt, &mut totals, "mem", &Syncs::new(), |_| Ok(MemStorage::default()));
    let dir = benches::bench_dir();
    let root = dir.path().to_owned();
    let syncs: Syncs = ["node1", "node2", "node3"]
        .map(|id| (NodeId::new(id), Arc::default()))
        .into();
    let counters = syncs.clone();
    bench_storage(c, &rt, &mut totals, "file-fsync", &syncs, move |id| {
        let vfs = CountingVfs::new(counters.get(id).cloned().unwrap_or_default());
        FileStorage::open_with_vfs(Arc::new(vfs), root.join(id.as_str()), Options::default())
            .map_err(|e| raft_cluster::Error::Storage(Box::new(e)))
    });
    for proposers in PROPOSERS {
        let rate = |storage| {
            totals
                .get(&(proposers, storage))
                .map(|(n, secs)| *n as f64 / secs.max(1e-9))
        };
        if let (Some(mem), Some(file)) = (rate("mem"), rate("file-fsync")) {
            println!(
                "ratio cluster/proposers/{proposers}: mem {mem:.0} commits/s vs file-fsync {file:.0} commits/s = {:.2}",
                mem / file
            );
        }
    }
}

criterion_group!(benches, cluster);
criterion_main!(benches);
