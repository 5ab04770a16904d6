//! Many groups on three hosts ([`RaftHost`]), for `multi_load`: durable writes/s at
//! a number of closed-loop clients spread over the groups, fsyncs per entry as groups
//! share the log writer, and the idle cost (CPU and RSS) of hosting many groups.
//!
//! The three hosts run in this process and talk over WebSocket connections on
//! loopback (one per peer per host, shared by every group) or the in-memory network.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_cluster::{HostOptions, MemNetwork, RaftConfig, RaftHandle, RaftHost, Transport};
use raft_core::{GroupId, Membership, NodeId, Role};
use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
use raft_storage::{FileStorage, LogStore, MultiLog, Options};
use raft_transport_ws::{WsConfig, WsTransport};

use super::easyraft::LastCommand;
use super::{command, LoadStats, Proposer};
use crate::CountingVfs;

type Node = RaftHandle<LastCommand>;

/// Any storage: a group's FileStorage or MemStorage.
type AnyStorage = Box<dyn LogStore + Send>;

/// What the hosts run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// WebSocket connections on 127.0.0.1.
    Ws,
    /// The in-memory network.
    Mem,
}

/// Where each group keeps its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A `FileStorage` directory per group (fsync on): an fdatasync per group write.
    File,
    /// One `MultiLog` per host (fsync on): one fdatasync for every group that wrote.
    Shared,
    /// `MemStorage`.
    Mem,
}

/// The host IDs.
pub const HOSTS: [&str; 3] = ["node1", "node2", "node3"];

/// Three hosts, each running every group; one fsync counter per host.
pub struct Hosts {
    hosts: Vec<RaftHost<AnyStorage, Box<dyn DynTransport>>>,
    /// `groups[g]` is group `g + 1`'s node on each host, in host order.
    pub groups: Vec<Vec<Node>>,
    /// fdatasync + directory fsync calls, per host.
    pub syncs: Vec<Arc<AtomicU64>>,
    _dir: tempfile::TempDir,
}

/// A transport behind a box, so both networks fit one host type.
pub trait DynTransport: Transport {}
impl<T: Transport> DynTransport for T {}

#[async_trait::async_trait]
impl Transport for Box<dyn DynTransport> {
    async fn start(&self, inbox: raft_cluster::Inbox) -> Result<(), raft_cluster::TransportError> {
        (**self).start(inbox).await
    }
    async fn send(&self, to: &NodeId, messages: Vec<raft_core::Message>) -> Result<(), raft_cluster::TransportError> {
        (**self).send(to, messages).await
    }
    async fn stop(&self) {
        (**self).stop().await
    }
}

/// The groups' timing: the cluster benches' (roomy elections on a busy machine).
pub fn config() -> RaftConfig {
    crate::cluster_config()
}

impl Hosts {
    /// Starts three hosts and `groups` groups on all of them, their logs where
    /// `store` says, and waits for every group's leader.
    pub async fn start(groups: usize, store: Store, net: Net) -> Hosts {
        let dir = crate::bench_dir();
        let discovery = Arc::new(StaticServiceDiscovery::new(Vec::<(&str, NodeAddress)>::new()));
        let mem = MemNetwork::new();
        let mut hosts = Vec::new();
        let mut syncs = Vec::new();
        for id in HOSTS {
            let ws = WsTransport::new(
                id,
                WsConfig::new(([127, 0, 0, 1], 0).into(), "multi"),
                discovery.clone(),
            );
            let transport: Box<dyn DynTransport> = match net {
                Net::Ws => Box::new(ws.clone()),
                Net::Mem => Box::new(mem.transport(id)),
            };
            let options = HostOptions::default().tick_interval(config().heartbeat_interval);
            let host = RaftHost::start(id, transport, options).await.expect("host starts");
            if net == Net::Ws {
                // Bound once started: say where.
                let port = ws.local_addr().expect("a bound port").port();
                discovery
                    .register_node(&NodeId::new(id), NodeAddress::new("127.0.0.1", port))
                    .await
                    .expect("registered");
            }
            hosts.push(host);
            syncs.push(Arc::new(AtomicU64::new(0)));
        }
        let mut shared = Vec::new();
        if store == Store::Shared {
            for (h, id) in HOSTS.iter().enumerate() {
                let vfs = CountingVfs::new(syncs[h].clone());
                let log = MultiLog::open_with_vfs(Arc::new(vfs), dir.path().join(id), Options::default());
                shared.push(log.expect("the shared log opens"));
            }
        }
        let mut all = Vec::new();
        for g in 1..=groups as GroupId {
            let mut nodes = Vec::new();
            for (h, host) in hosts.iter().enumerate() {
                let storage: AnyStorage = match store {
                    Store::File => {
                        let vfs = CountingVfs::new(syncs[h].clone());
                        let path = dir.path().join(HOSTS[h]).join(g.to_string());
                        let opened = FileStorage::open_with_vfs(Arc::new(vfs), path, Options::default());
                        Box::new(opened.expect("storage opens"))
                    }
                    Store::Shared => Box::new(shared[h].group(g).expect("a group's log")),
                    Store::Mem => Box::new(raft_core::MemStorage::default()),
                };
                let node = host
                    .create_group(
                        g,
                        config(),
                        storage,
                        LastCommand::default(),
                        Some(Membership::with_voters(HOSTS)),
                    )
                    .await
                    .expect("group starts");
                nodes.push(node);
            }
            all.push(nodes);
        }
        let hosts = Hosts {
            hosts,
            groups: all,
            syncs,
            _dir: dir,
        };
        hosts.wait_for_leaders().await;
        hosts
    }

    /// Waits until every group has a leader its other members follow.
    pub async fn wait_for_leaders(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        for nodes in &self.groups {
            loop {
                let led = nodes.iter().find(|n| n.view().role == Role::Leader).is_some_and(|l| {
                    let v = l.view();
                    nodes
                        .iter()
                        .all(|n| n.view().term == v.term && n.view().leader.as_ref() == Some(l.id()))
                });
                if led {
                    break;
                }
                assert!(Instant::now() < deadline, "a group elected no leader in 120 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Stops every host.
    pub async fn stop(self) {
        for h in &self.hosts {
            h.shutdown().await;
        }
    }
}

struct Client {
    nodes: Arc<[Node]>,
    leader: usize,
    command: [u8; super::COMMAND_BYTES],
}

impl Proposer for Client {
    async fn propose(&mut self) -> bool {
        crate::propose_on_leader(&self.nodes, &mut self.leader, self.command).await;
        true
    }
}

/// What one write run measured.
#[derive(Clone, Debug, Default)]
pub struct WriteRun {
    /// The clients' figures.
    pub stats: LoadStats,
    /// fsync calls per applied entry, averaged over the hosts.
    pub fsyncs_per_entry: f64,
}

/// `clients` closed-loop proposers of 16-byte commands, client `i` on group
/// `i % groups`, on three fresh hosts.
pub async fn writes(
    groups: usize,
    clients: usize,
    store: Store,
    net: Net,
    warmup: Duration,
    window: Duration,
) -> WriteRun {
    let hosts = Hosts::start(groups.max(1), store, net).await;
    let groups: Vec<Arc<[Node]>> = hosts.groups.iter().map(|n| n.clone().into()).collect();
    let stats = super::drive(clients, warmup, window, |i| Client {
        nodes: groups[i % groups.len()].clone(),
        leader: 0,
        command: command(i),
    })
    .await;
    let mut per_host: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for nodes in &hosts.groups {
        for (h, n) in nodes.iter().enumerate() {
            per_host.entry(h).or_default().0 += n.metrics().applied;
        }
    }
    let mut fsyncs = 0.0;
    for (h, (applied, _)) in &per_host {
        fsyncs += hosts.syncs[*h].load(Ordering::Relaxed) as f64 / (*applied).max(1) as f64;
    }
    hosts.stop().await;
    WriteRun {
        stats,
        fsyncs_per_entry: fsyncs / HOSTS.len() as f64,
    }
}

/// What one idle run measured.
#[derive(Clone, Debug, Default)]
pub struct IdleRun {
    /// CPU time of the process over the window, per host, in % of one core.
    pub cpu_pct_per_host: f64,
    /// Resident memory before the hosts started, in KiB.
    pub rss_before_kib: u64,
    /// Resident memory with every group elected and idle, in KiB.
    pub rss_after_kib: u64,
}

impl IdleRun {
    /// What the hosts and their groups added to the resident memory, per group and
    /// host, in KiB.
    pub fn rss_kib_per_group(&self, groups: usize) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / (groups.max(1) * HOSTS.len()) as f64
    }
}

/// Three hosts with `groups` idle groups (memory storage): after every group elected
/// and `settle` passed, the CPU the process uses over `window`, and its memory.
pub async fn idle(groups: usize, net: Net, settle: Duration, window: Duration) -> IdleRun {
    let rss_before_kib = rss_kib();
    let hosts = Hosts::start(groups.max(1), Store::Mem, net).await;
    tokio::time::sleep(settle).await;
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu1, t1) = (cpu_secs(), Instant::now());
    let run = IdleRun {
        cpu_pct_per_host: 100.0 * (cpu1 - cpu0) / (t1 - t0).as_secs_f64() / HOSTS.len() as f64,
        rss_before_kib,
        rss_after_kib: rss_kib(),
    };
    hosts.stop().await;
    run
}

/// This process's user + system CPU time, in seconds (Linux `/proc/self/stat`; 0
/// elsewhere).
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; the first field after the
    // name is field 3.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's resident memory in KiB (Linux `/proc/self/status`; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
