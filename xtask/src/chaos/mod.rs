//! `cargo xtask chaos`: the whole-system chaos test (DESIGN.md, "Testing, from the
//! inside out", level 4).
//!
//! Every Raft node is an OS process of its own (`cargo xtask chaos-node`, see
//! [`node`]) running the replicated KV with fsynced file storage, its API on a port of
//! its own that the clients reach directly; the nodes' Raft traffic (the JSON-RPC
//! transport) goes through loopback relays ([`crate::relay`]) so partitions can be cut
//! between processes. Concurrent clients ([`client`]) put, get and cas a few
//! keys and record every request with its invocation and completion times and its
//! outcome (ok, failed, unknown). Meanwhile faults chosen by a seeded RNG ([`faults`])
//! SIGKILL and restart nodes, SIGSTOP and SIGCONT them, cut partitions, one-way links
//! and lossy links, restart nodes with a fast or slow clock, fail or slow down their
//! fsyncs and writes (a fault-injecting file system in the node, [`node::FaultyVfs`]),
//! and, in the background, change the membership ([`churn`]: new nodes added as
//! learners, promoted, voters removed). At the end everything is healed, every key is
//! read once more, every member must catch up with the leader, and the whole history
//! goes through the linearizability checker (the `easyraft-linearizability` crate); a read after healing that
//! contradicts an acknowledged write is reported as a lost write.

mod churn;
mod client;
pub mod faults;
pub mod node;
mod procs;
pub mod rng;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft::NodeId;
use easyraft_linearizability::{self as check, Call, Op, Outcome, Ret, Verdict};

use self::client::Shared;
use self::faults::{Fault, FaultEvent};
use self::procs::Procs;
use self::rng::Rng;
use crate::demo::DemoError;
use crate::relay::Relays;

/// The token every request presents.
const TOKEN: &str = "chaos-token";
/// How long the cluster may take to elect a leader (a loaded 2-core machine).
const ELECTION: Duration = Duration::from_secs(30);

/// What `cargo xtask chaos` runs.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Cluster size (3 or 5).
    pub nodes: usize,
    /// How long faults are injected.
    pub duration: Duration,
    /// Concurrent clients.
    pub clients: usize,
    /// How many keys the clients share (few, so ops conflict).
    pub keys: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// The faults to inject.
    pub faults: Vec<Fault>,
    /// The program to run as `PROGRAM chaos-node ...` (the xtask binary).
    pub exe: PathBuf,
    /// Deliberately unsafe: the clients' gets ask for stale local reads
    /// (`kv_get` with `"stale": true`), so the checker must reject the history. A
    /// check of the checker against real processes. The final reads stay
    /// linearizable.
    pub stale_reads: bool,
}

impl ChaosOptions {
    /// 3 nodes, 30 s, 8 clients on 5 keys, every fault, this very program as the nodes.
    pub fn new(seed: u64) -> std::io::Result<Self> {
        Ok(ChaosOptions {
            nodes: 3,
            duration: Duration::from_secs(30),
            clients: 8,
            keys: 5,
            seed,
            faults: Fault::ALL.to_vec(),
            exe: std::env::current_exe()?,
            stale_reads: false,
        })
    }
}

/// What a chaos run found.
#[derive(Debug)]
pub struct ChaosReport {
    /// Whether the history is linearizable and no acknowledged write was lost.
    pub passed: bool,
    /// Every op the clients made, and the final reads.
    pub history: Vec<Op>,
    /// The faults injected.
    pub faults: Vec<FaultEvent>,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// How long the checker took.
    pub check_time: Duration,
    /// What went wrong outside the history: faults' anomalies (a node that kept
    /// running on a failed disk, a membership change that did not complete), members
    /// that did not catch up with the leader at the end.
    pub anomalies: Vec<String>,
}

impl ChaosReport {
    /// How many faults of `kind` happened.
    pub fn count(&self, kind: Fault) -> usize {
        self.faults.iter().filter(|f| f.fault == kind).count()
    }

    /// How many ops were answered.
    pub fn ok_ops(&self) -> usize {
        self.history
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok { .. }))
            .count()
    }
}

/// How many spare node slots the membership churn may use: one per churn step, about
/// one step per ten faults, a fault every 3-5 s.
fn spares(opts: &ChaosOptions) -> usize {
    if opts.faults.contains(&Fault::Churn) {
        (2 + opts.duration.as_secs() as usize / 40).min(16)
    } else {
        0
    }
}

/// The kernel's range of ephemeral ports (the ports outgoing connections get).
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut w = s.split_whitespace().map(|w| w.parse::<u16>().ok());
            Some((w.next()??, w.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Free loopback ports, `n` of them (two per node slot: Raft and API).
///
/// Outside the ephemeral range: a node's port is free while it is down (killed, or a
/// spare slot not started yet, perhaps for minutes), and the clients' thousands of
/// connections a second cycle through every ephemeral port, so one of them would
/// sooner or later take it and the node could not listen again. Ports below the
/// ephemeral range are only ever taken by a program that asks for them.
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let (lo, hi) = ephemeral_ports();
    let (first, last) = if lo > 11_000 {
        (10_000u16, lo - 1)
    } else {
        (hi.saturating_add(1), u16::MAX)
    };
    let span = u64::from(last - first) + 1;
    // Start somewhere different every run, so concurrent runs rarely meet.
    let mut at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            d.as_nanos() as u64 ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9)
        })
        % span;
    let mut listeners = Vec::new();
    for _ in 0..span {
        if listeners.len() == n {
            break;
        }
        let port = first + at as u16;
        at = (at + 1) % span;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(l);
        }
    }
    if listeners.len() < n {
        // No room outside the ephemeral range: any free port.
        listeners = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()?;
    }
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn elapsed(start: Instant) -> String {
    format!("{:>6.1}s", start.elapsed().as_secs_f64())
}

/// Runs a chaos test, printing as it goes.
pub async fn run(opts: ChaosOptions) -> Result<ChaosReport, DemoError> {
    let n = opts.nodes;
    if !(3..=7).contains(&n) || n % 2 == 0 {
        return Err(format!("--nodes must be 3, 5 or 7 (got {n})").into());
    }
    let kinds: Vec<&str> = opts.faults.iter().map(|f| f.name()).collect();
    println!(
        "easyraft chaos: {n} node processes, {} clients on {} keys, {} s of faults ({}), seed {}",
        opts.clients,
        opts.keys,
        opts.duration.as_secs(),
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        },
        opts.seed
    );
    println!(
        "  repeat the same faults with: cargo xtask chaos --nodes {n} --duration {} --clients {} --seed {}{}",
        opts.duration.as_secs(),
        opts.clients,
        opts.seed,
        if opts.faults.len() == Fault::ALL.len() {
            String::new()
        } else {
            format!(" --faults {}", kinds.join(","))
        }
    );
    if opts.stale_reads {
        println!("  --stale-reads: clients read each node's local state; this run is expected to FAIL the check");
    }
    let data = tempfile::Builder::new().prefix("easyraft-chaos-").tempdir()?;
    let slots = n + spares(&opts);
    let free = free_ports(2 * slots)?;
    let slot_ports = |from: usize| -> BTreeMap<String, u16> {
        free[from..from + slots]
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("n{}", i + 1), *p))
            .collect()
    };
    // Raft ports (reached through the relays, which partitions cut) and API ports
    // (the clients connect directly).
    let (raft_ports, ports) = (slot_ports(0), slot_ports(slots));
    let founders: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let relays = Relays::start(&raft_ports.iter().map(|(id, p)| (NodeId::new(id), *p)).collect()).await?;
    let peers: BTreeMap<String, String> = ports
        .keys()
        .map(|id| {
            let list: Vec<String> = relays
                .addresses_for(&NodeId::new(id))
                .into_iter()
                .map(|(peer, addr)| format!("{peer}={addr}"))
                .collect();
            (id.clone(), list.join(","))
        })
        .collect();
    let procs = Arc::new(Procs::new(
        opts.exe.clone(),
        data.path().to_path_buf(),
        TOKEN,
        ports.clone(),
        raft_ports.clone(),
        peers,
        founders.clone(),
    ));
    for id in &founders {
        procs.spawn(id)?;
    }
    println!(
        "  nodes {} on 127.0.0.1 (id:raft-port/api-port; FileStorage, fsync on), {} spare slots for new members, data and logs in {}",
        ports
            .iter()
            .filter(|(id, _)| founders.contains(id))
            .map(|(id, p)| format!("{id}:{}/{p}", raft_ports.get(id).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" "),
        ports.len() - founders.len(),
        data.path().display()
    );
    let start = Instant::now();
    let leader = wait_for_leader(&procs, ELECTION).await.ok_or_else(|| {
        format!(
            "no leader within {ELECTION:?}; see the logs in {}",
            data.path().display()
        )
    })?;
    println!("{}  {leader} elected; starting the clients", elapsed(start));

    let shared = Arc::new(Shared {
        ports: ports.clone(),
        procs: procs.clone(),
        token: TOKEN.into(),
        start,
        stop: Default::default(),
        ok: Default::default(),
        stale_reads: opts.stale_reads,
    });
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..opts.clients {
        let writer = client::writer(&shared).map_err(|e| e.to_string())?;
        clients.spawn(client::run(c, shared.clone(), writer, opts.seed, opts.keys.max(1)));
    }
    let mut rng = Rng::new(opts.seed);
    let until = Instant::now() + opts.duration;
    let counter = shared.clone();
    let log = move |line: &str| {
        println!("{line}   [{} ops answered]", counter.ok.load(Ordering::Relaxed));
    };
    let faults = faults::inject(&shared, &relays, &mut rng, &opts.faults, start, until, &log).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut history = Vec::new();
    while let Some(ops) = clients.join_next().await {
        history.extend(ops.map_err(|e| format!("a client panicked: {e}"))?);
    }
    let faults = faults?;
    println!(
        "{}  clients stopped; every fault healed; reading every key back",
        elapsed(start)
    );

    // Final reads: every key, once the cluster is whole again.
    relays.heal();
    let keys: Vec<String> = (0..opts.keys.max(1)).map(|k| format!("k{k}")).collect();
    let finals = final_reads(&procs, &shared, &keys).await;
    match finals {
        Ok(reads) => history.extend(reads),
        Err(key) => {
            println!("{}  could not read {key} back within {ELECTION:?}", elapsed(start));
            let kept = data.keep();
            return Err(format!(
                "the cluster did not recover: no linearizable read of {key} (data and logs kept in {})",
                kept.display()
            )
            .into());
        }
    }
    let mut anomalies: Vec<String> = faults
        .iter()
        .filter_map(|f| {
            f.anomaly
                .as_ref()
                .map(|a| format!("{} at {:.1}s: {a}", f.fault, f.at.as_secs_f64()))
        })
        .collect();
    anomalies.extend(caught_up(&procs, &shared).await);
    println!("{}  members at the end: {}", elapsed(start), procs.members().join(", "));
    procs.stop_all();

    let checked = Instant::now();
    let h = history.clone();
    let verdict = tokio::task::spawn_blocking(move || check::check(&h))
        .await
        .map_err(|e| format!("the checker panicked: {e}"))?;
    let check_time = checked.elapsed();
    let report = ChaosReport {
        passed: verdict.passed() && anomalies.is_empty(),
        history,
        faults,
        verdict,
        check_time,
        anomalies,
    };
    print_summary(&report, opts.seed);
    // Keep the logs of a failed run, unless the failure was asked for (stale reads).
    if !report.passed && !opts.stale_reads {
        for id in ports.keys() {
            println!("  logs of {id}: {}", procs.log_path(id).display());
        }
        let kept = data.keep();
        println!("  (data and logs kept in {})", kept.display());
    }
    Ok(report)
}

/// Waits until some node up reports being the leader.
async fn wait_for_leader(procs: &Procs, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(l) = procs.leader() {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Every member's applied index must reach the leader's commit index (as read after
/// the final reads) within [`ELECTION`]: a node that never recovers from its faults is
/// reported. Returns the members that did not.
async fn caught_up(procs: &Procs, shared: &Shared) -> Vec<String> {
    let deadline = Instant::now() + ELECTION;
    let status = |id: String| async move {
        let port = shared.ports.get(&id).copied().unwrap_or(0);
        client::call(port, &shared.token, "admin_status", &serde_json::json!({})).await
    };
    let mut target = None;
    let mut behind: Vec<String> = procs.members();
    while Instant::now() < deadline && !behind.is_empty() {
        if target.is_none() {
            if let Some(l) = procs.leader() {
                target = status(l).await.and_then(|v| v["commit"].as_u64());
            }
        }
        if let Some(commit) = target {
            let mut still = Vec::new();
            for id in behind {
                let applied = status(id.clone()).await.and_then(|v| v["applied"].as_u64());
                if applied.is_none_or(|a| a < commit) {
                    still.push(id);
                }
            }
            behind = still;
        }
        if !behind.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    behind
        .into_iter()
        .map(|id| format!("{id} did not catch up with the leader's commit index within {ELECTION:?} after healing"))
        .collect()
}

/// Reads every key once more (on the leader, retried until answered); the reads join
/// the history, so a lost acknowledged write makes it non-linearizable. `Err(key)`
/// when a key cannot be read.
async fn final_reads(procs: &Procs, shared: &Shared, keys: &[String]) -> Result<Vec<Op>, String> {
    let deadline = Instant::now() + ELECTION;
    let mut reads = Vec::new();
    for key in keys {
        loop {
            let leader = procs.leader().unwrap_or_default();
            let invoke = shared.now();
            if let Some(value) = client::get(shared, &leader, key).await {
                reads.push(Op {
                    client: usize::MAX,
                    key: key.clone(),
                    call: Call::Get,
                    invoke,
                    outcome: Outcome::Ok {
                        complete: shared.now(),
                        ret: Ret::Get { value },
                    },
                    final_read: true,
                });
                break;
            }
            if Instant::now() > deadline {
                return Err(key.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(reads)
}

fn print_summary(report: &ChaosReport, seed: u64) {
    println!();
    println!("faults:");
    for f in &report.faults {
        println!("  {:>6.1}s  {:<9} {}", f.at.as_secs_f64(), f.fault.name(), f.what);
    }
    let by_kind: Vec<String> = Fault::ALL
        .iter()
        .map(|k| (k, report.count(*k)))
        .filter(|(_, c)| *c > 0)
        .map(|(k, c)| format!("{k} {c}"))
        .collect();
    println!("faults by kind: {}", by_kind.join(", "));
    for a in &report.anomalies {
        println!("ANOMALY: {a}");
    }
    println!("ops (ok / failed / unknown):");
    for (kind, [ok, fail, unknown]) in check::counts(&report.history) {
        println!("  {kind:<4} {ok:>6} / {fail:>5} / {unknown:>5}");
    }
    let v = &report.verdict;
    println!(
        "checker: {} keys, {} ops in the search, {:.2?}",
        v.keys, v.ops_checked, report.check_time
    );
    for f in &v.failures {
        print!("{}", f.describe(&report.history));
    }
    for k in &v.gave_up {
        println!(
            "key {k}: the search exceeded its budget ({} configurations): no verdict",
            check::BUDGET
        );
    }
    println!();
    let ok = report.ok_ops();
    if report.passed {
        println!(
            "PASS: the history of {ok} answered ops through {} faults is linearizable; no acknowledged write lost (seed {seed})",
            report.faults.len()
        );
    } else if v.passed() {
        println!(
            "FAIL: the history is linearizable, but {} anomalies (seed {seed})",
            report.anomalies.len()
        );
    } else if v.failures.iter().any(|f| f.lost_write) {
        println!("FAIL: an acknowledged write was lost (seed {seed})");
    } else if !v.failures.is_empty() {
        println!("FAIL: the history is not linearizable (seed {seed})");
    } else {
        println!("FAIL: the checker gave up (seed {seed})");
    }
}
