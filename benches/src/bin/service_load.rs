//! One run of the service load workload, for `cargo xtask bench service`:
//!
//! ```text
//! service_load --system easyraft|easyraft-stream|etcd --op put|get --endpoints HOST:PORT,...
//!              [--clients N] [--secs S] [--warmup S] [--workers W]
//! ```
//!
//! Finds the leader among `--endpoints` (client ports of running servers), connects
//! `--clients` closed-loop clients to it, one HTTP/1.1 keep-alive connection each,
//! writes each client's key once, then runs `put` or linearizable `get` of 16-byte
//! keys and 100-byte values for a warm-up and a measured window (see
//! `benches::load::service`). Prints one JSON line: commits/s (acknowledged
//! operations per second), p50/p99 in microseconds, every acknowledged operation
//! (`total_ops`) and the failed ones (`errors`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use benches::load::service::{self, Op, System};
use benches::load::{self};
use serde_json::json;

struct Args {
    system: System,
    op: Op,
    endpoints: Vec<SocketAddr>,
    clients: usize,
    secs: f64,
    warmup: f64,
    workers: usize,
}

const USAGE: &str = "usage: service_load --system easyraft|easyraft-stream|etcd --op put|get --endpoints HOST:PORT,... [--clients N] [--secs S] [--warmup S] [--workers W]";

fn parse() -> Result<Args, String> {
    let mut a = Args {
        system: System::Easyraft,
        op: Op::Put,
        endpoints: Vec::new(),
        clients: 1,
        secs: 3.0,
        warmup: 1.0,
        workers: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--system" => {
                a.system = match value()?.as_str() {
                    "easyraft" => System::Easyraft,
                    "easyraft-stream" => System::EasyraftStream,
                    "etcd" => System::Etcd,
                    other => return Err(format!("unknown system {other:?}\n{USAGE}")),
                }
            }
            "--op" => {
                a.op = match value()?.as_str() {
                    "put" => Op::Put,
                    "get" => Op::Get,
                    other => return Err(format!("unknown op {other:?}\n{USAGE}")),
                }
            }
            "--endpoints" => {
                a.endpoints = value()?
                    .split(',')
                    .map(|e| {
                        e.trim()
                            .parse::<SocketAddr>()
                            .map_err(|err| bad(&format!("{e}: {err}")))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--clients" => a.clients = value()?.parse().map_err(|e| bad(&e))?,
            "--secs" => a.secs = value()?.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = value()?.parse().map_err(|e| bad(&e))?,
            "--workers" => a.workers = value()?.parse().map_err(|e| bad(&e))?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.endpoints.is_empty() {
        return Err(format!("--endpoints is required\n{USAGE}"));
    }
    let in_range = |x: f64, lo: f64| (lo..=3600.0).contains(&x);
    if a.clients == 0 || a.workers == 0 || !in_range(a.secs, f64::MIN_POSITIVE) || !in_range(a.warmup, 0.0) {
        return Err(format!(
            "--clients and --workers must be positive, --secs in (0, 3600], --warmup in [0, 3600]\n{USAGE}"
        ));
    }
    Ok(a)
}

async fn run(a: &Args) -> Result<load::LoadStats, service::ServiceError> {
    let leader = service::find_leader(a.system, &a.endpoints, Duration::from_secs(30)).await?;
    let clients = service::prepare(a.system, a.op, leader, &a.endpoints, a.clients).await?;
    Ok(load::drive_all(
        clients,
        Duration::from_secs_f64(a.warmup),
        Duration::from_secs_f64(a.secs),
    )
    .await)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stats = match rt.block_on(run(&args)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("service_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.shutdown_timeout(Duration::from_millis(200));
    let line = json!({
        "system": match args.system {
            System::Easyraft => "easyraft",
            System::EasyraftStream => "easyraft-stream",
            System::Etcd => "etcd",
        },
        "op": match args.op { Op::Put => "put", Op::Get => "get" },
        "clients": args.clients,
        "workers": args.workers,
        "secs": args.secs,
        "commits": stats.commits,
        "commits_per_sec": stats.commits_per_sec(),
        "p50_us": stats.p50.as_secs_f64() * 1e6,
        "p99_us": stats.p99.as_secs_f64() * 1e6,
        "total_ops": stats.total_ops,
        "errors": stats.errors,
    });
    println!("{line}");
    ExitCode::SUCCESS
}
