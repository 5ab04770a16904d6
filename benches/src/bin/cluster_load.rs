//! One run of the cluster load workload, for `cargo xtask bench compare`:
//!
//! ```text
//! cluster_load --system easyraft|easyraft-file|openraft09|openraft10
//!              [--clients N] [--secs S] [--warmup S] [--workers W]
//! ```
//!
//! 3 nodes in this process on an in-memory network, a tokio runtime of `--workers`
//! threads (nodes and clients alike), `--clients` closed-loop proposers of 16-byte
//! commands on the leader. Prints one JSON line: commits/s, p50/p99 in microseconds,
//! every acknowledged op (`total_ops`, for dividing syscall counts) and, for easyraft,
//! persists and fsyncs per applied entry. openraft needs the `openraft` feature.

use std::process::ExitCode;
use std::time::Duration;

use benches::load::{self, LoadStats};
use serde_json::{json, Value};

struct Args {
    system: String,
    clients: usize,
    secs: f64,
    warmup: f64,
    workers: usize,
}

const USAGE: &str = "usage: cluster_load --system easyraft|easyraft-file|openraft09|openraft10 [--clients N] [--secs S] [--warmup S] [--workers W]";

fn parse() -> Result<Args, String> {
    let mut a = Args {
        system: String::new(),
        clients: 1,
        secs: 3.0,
        warmup: 0.5,
        workers: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--system" => a.system = value()?,
            "--clients" => a.clients = value()?.parse().map_err(|e| bad(&e))?,
            "--secs" => a.secs = value()?.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = value()?.parse().map_err(|e| bad(&e))?,
            "--workers" => a.workers = value()?.parse().map_err(|e| bad(&e))?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.clients == 0 || a.workers == 0 || a.secs <= 0.0 || a.warmup < 0.0 {
        return Err(format!("--clients, --workers and --secs must be positive\n{USAGE}"));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (warmup, window) = (Duration::from_secs_f64(args.warmup), Duration::from_secs_f64(args.secs));
    let clients = args.clients;
    let (stats, extra): (LoadStats, Value) = match args.system.as_str() {
        s @ ("easyraft" | "easyraft-file") => {
            let (stats, io) = rt.block_on(load::easyraft::run(s == "easyraft-file", clients, warmup, window));
            let extra = json!({
                "persists_per_entry_leader": io.persists_leader,
                "persists_per_entry_follower": io.persists_follower,
                "fsyncs_per_entry_leader": io.fsyncs_leader,
                "fsyncs_per_entry_follower": io.fsyncs_follower,
            });
            (stats, extra)
        }
        #[cfg(feature = "openraft")]
        "openraft10" => (rt.block_on(load::openraft10::run(clients, warmup, window)), json!({})),
        #[cfg(feature = "openraft")]
        "openraft09" => (rt.block_on(load::openraft09::run(clients, warmup, window)), json!({})),
        #[cfg(not(feature = "openraft"))]
        "openraft10" | "openraft09" => {
            eprintln!(
                "{} needs the `openraft` feature: cargo build -p benches --features openraft",
                args.system
            );
            return ExitCode::from(2);
        }
        other => {
            eprintln!("unknown system {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Do not wait for tasks a system leaves behind (openraft's cores, easyraft's timers).
    rt.shutdown_timeout(Duration::from_millis(200));
    let mut line = json!({
        "system": args.system,
        "clients": clients,
        "workers": args.workers,
        "secs": window.as_secs_f64(),
        "commits": stats.commits,
        "commits_per_sec": stats.commits_per_sec(),
        "p50_us": stats.p50.as_secs_f64() * 1e6,
        "p99_us": stats.p99.as_secs_f64() * 1e6,
        "total_ops": stats.total_ops,
    });
    if let (Value::Object(l), Value::Object(e)) = (&mut line, extra) {
        l.extend(e);
    }
    println!("{line}");
    ExitCode::SUCCESS
}
