//! `cargo xtask bench service`: the real server measured. Three `easyraft-server`
//! processes (release build) on loopback, driven over HTTP by `benches`'
//! `service_load` (closed-loop clients, one keep-alive connection each, `kv_put` or
//! linearizable `kv_get`) and over the binary stream through easyraft-client
//! (`stream`: every 64 clients share one connection), interleaved round by round with the in-process ceiling
//! (`cluster_load --system easyraft-file`, as `bench compare` runs it) and with three
//! etcd members driven by the same load generator through etcd's JSON gateway.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::procs::{self, Procs};
use super::report::{spread, Sample};
use super::{cargo, run, CompareOptions, Contender};
use crate::error::TaskError;

/// What `cargo xtask bench service` runs.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// How many times every (system, op, clients) triple runs.
    pub rounds: usize,
    /// Concurrent clients, one table per value (and op).
    pub clients: Vec<usize>,
    /// `put`, `get` or both.
    pub ops: Vec<String>,
    /// Systems, of `service`, `stream`, `ceiling`, `etcd`.
    pub systems: Vec<String>,
    /// Measured seconds per run.
    pub secs: f64,
    /// Warm-up seconds per run, before the measured window.
    pub warmup: f64,
    /// Tokio worker threads of the load generator (and of the ceiling's process).
    pub workers: usize,
    /// The workspace root.
    pub root: PathBuf,
    /// The cargo target directory.
    pub target: PathBuf,
}

/// The systems `bench service` knows.
pub const SYSTEMS: [&str; 4] = ["service", "stream", "ceiling", "etcd"];

/// The labels in the table.
fn label(system: &str) -> &'static str {
    match system {
        "service" => "easyraft-server http",
        "stream" => "easyraft-server stream",
        "ceiling" => "ceiling (in-process)",
        _ => "etcd",
    }
}

/// Every round of one (system, op, clients).
struct Row {
    system: String,
    op: String,
    clients: usize,
    samples: Vec<Sample>,
    errors: u64,
}

struct Binaries {
    server: PathBuf,
    service_load: PathBuf,
    cluster_load: PathBuf,
}

/// Builds, runs every round and prints the table.
pub fn bench(opts: &ServiceOptions) -> Result<bool, TaskError> {
    for s in &opts.systems {
        if !SYSTEMS.contains(&s.as_str()) {
            return Err(format!("unknown system {s:?} (one of {})", SYSTEMS.join(", ")).into());
        }
    }
    for op in &opts.ops {
        if op != "put" && op != "get" {
            return Err(format!("unknown op {op:?} (put or get)").into());
        }
    }
    let etcd = if opts.systems.iter().any(|s| s == "etcd") {
        Some(crate::suite::etcd_or_install()?)
    } else {
        None
    };
    let bins = build(opts)?;
    // From here on processes and directories exist: SIGINT/SIGTERM remove them.
    procs::clean_up_on_signal();
    let under = opts.target.join("bench-service");
    let mut rows: Vec<Row> = Vec::new();
    let mut lines = String::new();
    let runs_per_round: usize = opts
        .systems
        .iter()
        .map(|s| if s == "ceiling" { 1 } else { opts.ops.len() })
        .sum::<usize>()
        * opts.clients.len();
    let total = runs_per_round * opts.rounds;
    let mut n = 0;
    for round in 1..=opts.rounds {
        for system in &opts.systems {
            let mut cluster = match system.as_str() {
                "service" | "stream" => Some(procs::start_easyraft(&bins.server, &under)?),
                "etcd" => Some(procs::start_etcd(etcd.as_deref().ok_or("no etcd binary")?, &under)?),
                _ => None,
            };
            let ops: Vec<String> = if system == "ceiling" {
                vec!["put".to_owned()]
            } else {
                opts.ops.clone()
            };
            for op in &ops {
                for &clients in &opts.clients {
                    n += 1;
                    eprint!(
                        "[{n}/{total}] round {round}: {} {op} with {clients} clients ... ",
                        label(system)
                    );
                    let (sample, errors, line) = match &mut cluster {
                        Some(c) => load(&bins, c, system, op, clients, opts)?,
                        None => ceiling(&bins, clients, opts)?,
                    };
                    eprintln!(
                        "{:.0} ops/s, p99 {:.2} ms{}",
                        sample.commits_per_sec,
                        sample.p99_us / 1e3,
                        if errors > 0 {
                            format!(", {errors} errors")
                        } else {
                            String::new()
                        }
                    );
                    lines.push_str(&line);
                    lines.push('\n');
                    match rows
                        .iter_mut()
                        .find(|r| &r.system == system && &r.op == op && r.clients == clients)
                    {
                        Some(r) => {
                            r.samples.push(sample);
                            r.errors += errors;
                        }
                        None => rows.push(Row {
                            system: system.clone(),
                            op: op.clone(),
                            clients,
                            samples: vec![sample],
                            errors,
                        }),
                    }
                }
            }
            // Stops the cluster and removes its directory before the next system runs.
            drop(cluster);
        }
    }
    let log = opts.target.join("bench-service.jsonl");
    std::fs::write(&log, lines)?;
    println!("{}", render(&rows, opts, etcd.is_some()));
    println!("raw results: {}", log.display());
    Ok(true)
}

/// `cargo build --release` of `easyraft-server`, `service_load` and `cluster_load`,
/// once.
fn build(opts: &ServiceOptions) -> Result<Binaries, TaskError> {
    run(
        cargo()
            .current_dir(&opts.root)
            .args([
                "build",
                "--release",
                "-p",
                "easyraft-server",
                "-p",
                "benches",
                "--bin",
                "easyraft-server",
                "--bin",
                "service_load",
                "--bin",
                "cluster_load",
            ])
            .env("CARGO_TARGET_DIR", &opts.target),
        "building easyraft-server, service_load and cluster_load",
    )?;
    let release = opts.target.join("release");
    Ok(Binaries {
        server: release.join("easyraft-server"),
        service_load: release.join("service_load"),
        cluster_load: release.join("cluster_load"),
    })
}

/// One `service_load` run against `cluster`: its sample, errors and JSON line.
fn load(
    bins: &Binaries,
    cluster: &mut Procs,
    system: &str,
    op: &str,
    clients: usize,
    opts: &ServiceOptions,
) -> Result<(Sample, u64, String), TaskError> {
    let output = procs::output_tracked(
        Command::new(&bins.service_load)
            .args([
                "--system",
                match system {
                    "etcd" => "etcd",
                    "stream" => "easyraft-stream",
                    _ => "easyraft",
                },
            ])
            .args(["--op", op])
            .args(["--endpoints", &cluster.endpoint_list()])
            .args(["--clients", &clients.to_string()])
            .args(["--secs", &opts.secs.to_string()])
            .args(["--warmup", &opts.warmup.to_string()])
            .args(["--workers", &opts.workers.to_string()]),
    )
    .map_err(|e| format!("cannot run {}: {e}", bins.service_load.display()))?;
    if !output.status.success() {
        return Err(format!(
            "service_load --system {system} --op {op} --clients {clients} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            cluster.diagnose()
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default().to_owned();
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad output of service_load ({e}): {line}"))?;
    let errors = v.get("errors").and_then(Value::as_u64).unwrap_or_default();
    Ok((Sample::from_json(&v), errors, line))
}

/// One `cluster_load --system easyraft-file` run, as `bench compare` runs it.
fn ceiling(bins: &Binaries, clients: usize, opts: &ServiceOptions) -> Result<(Sample, u64, String), TaskError> {
    let contender = Contender {
        label: "ceiling".to_owned(),
        binary: bins.cluster_load.clone(),
        system: "easyraft-file".to_owned(),
    };
    let compare = CompareOptions {
        rounds: 1,
        clients: vec![clients],
        systems: vec!["easyraft-file".to_owned()],
        secs: opts.secs,
        warmup: opts.warmup,
        workers: opts.workers,
        baseline: None,
        strace: false,
        root: opts.root.clone(),
        target: opts.target.clone(),
    };
    let (sample, line) = super::run_once(&contender, clients, &compare, None)?;
    Ok((sample, 0, line))
}

/// The whole report: per op and client count, a row per system, then the ratios of
/// medians.
fn render(rows: &[Row], opts: &ServiceOptions, etcd: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} rounds of {} s (+{} s warm-up), interleaved round by round; closed-loop clients, 16-byte keys \
         (one per client), 100-byte values; load generator: benches' service_load, {} tokio workers",
        opts.rounds, opts.secs, opts.warmup, opts.workers
    );
    let _ = writeln!(
        out,
        "  easyraft-server: 3 processes (release) on loopback, FileStorage with fsync on, default [raft] timing; \
         http: JSON-RPC kv_put / kv_get (linearizable) over one HTTP/1.1 keep-alive connection per client to the leader; \
         stream: the same calls over the binary stream (GET /v1/stream, postcard frames) through easyraft-client's typed Kv, \
         every 64 clients sharing one Client and so one connection"
    );
    let _ = writeln!(
        out,
        "  ceiling (in-process): cluster_load --system easyraft-file (3 nodes in one process, in-memory network, \
         FileStorage with fsync on, 16-byte commands; puts only)"
    );
    if etcd {
        let _ = writeln!(
            out,
            "  etcd: {}, 3 members on loopback, own data dirs, etcd's defaults (fsync on); driven by the same \
             load generator through etcd's JSON gateway, POST /v3/kv/put and POST /v3/kv/range (linearizable) \
             with base64 key/value, one HTTP/1.1 keep-alive connection per client to the leader",
            etcd_version()
        );
    }
    for op in &opts.ops {
        for &c in &opts.clients {
            let here: Vec<&Row> = rows.iter().filter(|r| &r.op == op && r.clients == c).collect();
            if here.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{op}, {c} clients");
            let _ = writeln!(
                out,
                "  {:<22} {:>27}  {:>26}  {:>7}",
                "system", "ops/s min/median/max", "p99 ms min/median/max", "errors"
            );
            for r in &here {
                let (lo, mid, hi) = spread(r.samples.iter().map(|s| s.commits_per_sec).collect());
                let (plo, pmid, phi) = spread(r.samples.iter().map(|s| s.p99_us / 1e3).collect());
                let _ = writeln!(
                    out,
                    "  {:<22} {:>8.0} {:>9.0} {:>8.0}  {:>8.2} {:>8.2} {:>8.2}  {:>7}",
                    label(&r.system),
                    lo,
                    mid,
                    hi,
                    plo,
                    pmid,
                    phi,
                    r.errors
                );
            }
            let median = |system: &str| {
                here.iter()
                    .find(|r| r.system == system)
                    .map(|r| spread(r.samples.iter().map(|s| s.commits_per_sec).collect()).1)
            };
            for ours in ["service", "stream"] {
                for other in ["ceiling", "etcd"] {
                    if let (Some(a), Some(b)) = (median(ours), median(other)) {
                        let _ = writeln!(
                            out,
                            "  ratio {} ÷ {}: {:.2}× ops/s (medians)",
                            label(ours),
                            label(other),
                            a / b.max(1e-9)
                        );
                    }
                }
            }
        }
    }
    out
}

/// `etcd --version`'s first line, or "etcd" if it does not say.
fn etcd_version() -> String {
    raft_discovery::testing::etcd_binary()
        .ok()
        .and_then(|bin| Command::new(bin).arg("--version").output().ok())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "etcd".to_owned())
}
