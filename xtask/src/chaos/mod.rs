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
//! fsyncs and writes (a fault-injecting file system in the node, [`faulty_disk::FaultyVfs`]),
//! and, in the background, change the membership ([`churn`]: new nodes added as
//! learners, promoted, voters removed). At the end everything is healed, every key is
//! read once more, every member must catch up with the leader, and the whole history
//! goes through the linearizability checker (the `easyraft-linearizability` crate); a read after healing that
//! contradicts an acknowledged write is reported as a lost write.

mod churn;
mod client;
pub mod faults;
pub mod faulty_disk;
mod inject;
pub mod node;
mod options;
mod procs;
mod settle;
mod summary;

pub use options::{ChaosOptions, ChaosReport};

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft::NodeId;
use easyraft_linearizability as check;

use self::client::Shared;
use self::faults::Fault;
use self::procs::Procs;
use self::settle::ELECTION;
use crate::error::TaskError;
use crate::ports::free_ports_outside_ephemeral;
use crate::relay::Relays;
use crate::rng::Rng;

/// The token every request presents.
const TOKEN: &str = "chaos-token";

/// How many spare node slots the membership churn may use: one per churn step, about
/// one step per ten faults, a fault every 3-5 s.
fn spares(opts: &ChaosOptions) -> usize {
    if opts.faults.contains(&Fault::Churn) {
        (2 + opts.duration.as_secs() as usize / 40).min(16)
    } else {
        0
    }
}

fn elapsed(start: Instant) -> String {
    format!("{:>6.1}s", start.elapsed().as_secs_f64())
}

/// Runs a chaos test, printing as it goes.
pub async fn run(opts: ChaosOptions) -> Result<ChaosReport, TaskError> {
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
    let free = free_ports_outside_ephemeral(2 * slots)?;
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
    let faults = inject::inject(&shared, &relays, &mut rng, &opts.faults, start, until, &log).await;
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
    let finals = settle::final_reads(&procs, &shared, &keys).await;
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
    anomalies.extend(settle::caught_up(&procs, &shared).await);
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
    summary::print_summary(&report, opts.seed);
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
