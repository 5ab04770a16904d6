//! Many Raft groups on three hosts (`raft_cluster::RaftHost`), for the tables of
//! docs/multi-raft.md:
//!
//! ```text
//! multi_load writes --groups G [--clients N] [--storage file|shared|mem] [--net ws|mem]
//!                   [--secs S] [--warmup S] [--workers W]
//! multi_load idle --groups G [--net ws|mem] [--secs S] [--settle S] [--workers W]
//! ```
//!
//! `writes`: `--clients` closed-loop proposers of 16-byte commands, client `i` on
//! group `i % G` (`--storage file`: a FileStorage directory per group; `shared`: one
//! MultiLog per host); prints commits/s, p50/p99 (µs) and fsyncs per applied entry per
//! host. `idle`: `G` idle groups; prints the CPU per host (% of one core) and the
//! resident memory per group and host. One JSON line each.

use std::process::ExitCode;
use std::time::Duration;

use benches::load::multi::{self, Net, Store};
use serde_json::json;

struct Args {
    mode: String,
    groups: usize,
    clients: usize,
    store: Store,
    net: Net,
    secs: f64,
    warmup: f64,
    workers: usize,
}

const USAGE: &str = "usage: multi_load writes|idle --groups G [--clients N] [--storage file|shared|mem] [--net ws|mem] [--secs S] [--warmup S] [--workers W]";

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or(USAGE)?;
    if mode != "writes" && mode != "idle" {
        return Err(USAGE.into());
    }
    let mut a = Args {
        mode,
        groups: 1,
        clients: 256,
        store: Store::File,
        net: Net::Ws,
        secs: 3.0,
        warmup: 1.0,
        workers: 2,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--groups" => a.groups = value()?.parse().map_err(|e| bad(&e))?,
            "--clients" => a.clients = value()?.parse().map_err(|e| bad(&e))?,
            "--storage" => {
                a.store = match value()?.as_str() {
                    "file" => Store::File,
                    "shared" => Store::Shared,
                    "mem" => Store::Mem,
                    other => return Err(format!("--storage {other}: file, shared or mem")),
                }
            }
            "--net" => {
                a.net = match value()?.as_str() {
                    "ws" => Net::Ws,
                    "mem" => Net::Mem,
                    other => return Err(format!("--net {other}: ws or mem")),
                }
            }
            "--secs" => a.secs = value()?.parse().map_err(|e| bad(&e))?,
            "--warmup" | "--settle" => a.warmup = value()?.parse().map_err(|e| bad(&e))?,
            "--workers" => a.workers = value()?.parse().map_err(|e| bad(&e))?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.groups == 0 || a.clients == 0 || a.workers == 0 || a.secs <= 0.0 || a.warmup < 0.0 {
        return Err(format!(
            "--groups, --clients, --workers and --secs must be positive\n{USAGE}"
        ));
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
    let line = if args.mode == "writes" {
        let run = rt.block_on(multi::writes(
            args.groups,
            args.clients,
            args.store,
            args.net,
            warmup,
            window,
        ));
        json!({
            "mode": "writes",
            "groups": args.groups,
            "clients": args.clients,
            "storage": format!("{:?}", args.store).to_lowercase(),
            "commits_per_sec": run.stats.commits_per_sec(),
            "p50_us": run.stats.p50.as_micros() as u64,
            "p99_us": run.stats.p99.as_micros() as u64,
            "errors": run.stats.errors,
            "fsyncs_per_entry": run.fsyncs_per_entry,
        })
    } else {
        let run = rt.block_on(multi::idle(args.groups, args.net, warmup, window));
        json!({
            "mode": "idle",
            "groups": args.groups,
            "cpu_pct_per_host": run.cpu_pct_per_host,
            "rss_before_kib": run.rss_before_kib,
            "rss_after_kib": run.rss_after_kib,
            "rss_kib_per_group": run.rss_kib_per_group(args.groups),
        })
    };
    println!("{line}");
    ExitCode::SUCCESS
}
