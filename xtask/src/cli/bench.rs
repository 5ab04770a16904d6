//! `cargo xtask bench [compare|service] ...`: the criterion benches, or the
//! interleaved comparisons with their own arguments.

use std::process::ExitCode;

use clap::Parser;
use xtask::bench;
use xtask::workspace::{cargo, target_dir, workspace_root};

use super::{finish, Outcome};

/// `cargo xtask bench compare`: easyraft beside openraft on one workload (3 nodes in
/// one process, in-memory network, closed-loop proposers of 16-byte commands), each
/// run a separate process, interleaved round by round; prints min/median/max of
/// commits/s and p99 per system and the ratios of medians.
#[derive(Parser)]
struct CompareArgs {
    /// Rounds: every (system, clients) pair runs once per round.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    rounds: u16,
    /// Concurrent proposers, comma-separated; one table each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,1024")]
    clients: Vec<usize>,
    /// Systems, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "easyraft,easyraft-file,openraft10,openraft09"
    )]
    systems: Vec<String>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Warm-up seconds per run (not measured).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Tokio worker threads per process, the same for every system.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also build this git revision of easyraft (in a worktree under the target
    /// directory) and run its easyraft systems interleaved with the current ones.
    #[arg(long, value_name = "REV")]
    baseline: Option<String>,
    /// After the rounds, run each pair once more under `strace -f -c` and print
    /// futex, epoll_wait and write calls per acknowledged proposal.
    #[arg(long)]
    strace: bool,
}

/// `cargo xtask bench service`: the real server measured. 3 `easyraft-server`
/// processes (release, fsync on) on loopback driven over HTTP by closed-loop clients
/// (one keep-alive connection each to the leader, `kv_put` of 16-byte keys and
/// 100-byte values, or linearizable `kv_get`), interleaved round by round with the
/// in-process ceiling (`cluster_load --system easyraft-file`) and with 3 etcd members
/// driven by the same load generator through etcd's JSON gateway; prints min/median/max
/// of ops/s and p99 per (system, op, clients) and the ratios of medians.
#[derive(Parser)]
struct ServiceBenchArgs {
    /// Rounds: every (system, op, clients) runs once per round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    rounds: u16,
    /// Concurrent clients, comma-separated; one table each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,1024")]
    clients: Vec<usize>,
    /// Operations, comma-separated: put, get.
    #[arg(long, value_delimiter = ',', default_value = "put,get")]
    ops: Vec<String>,
    /// Systems, comma-separated: service (easyraft-server over JSON-RPC/HTTP), stream
    /// (easyraft-server over the binary stream), ceiling (in-process), etcd.
    #[arg(long, value_delimiter = ',', default_value = "service,stream,ceiling,etcd")]
    systems: Vec<String>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Warm-up seconds per run (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Tokio worker threads of the load generator and of the ceiling's process.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// `cargo xtask bench ARGS...`: `compare ...`, `service ...`, or `cargo bench -p
/// benches ARGS...`.
pub(crate) fn run(args: Vec<String>) -> ExitCode {
    finish(match args.first().map(String::as_str) {
        Some("service") => run_service_bench(ServiceBenchArgs::parse_from(
            std::iter::once("cargo xtask bench service".to_owned()).chain(args.into_iter().skip(1)),
        )),
        Some("compare") => run_compare(CompareArgs::parse_from(
            std::iter::once("cargo xtask bench compare".to_owned()).chain(args.into_iter().skip(1)),
        )),
        _ => std::process::Command::new(cargo())
            .args(["bench", "-p", "benches"])
            .args(args)
            .status()
            .map(|s| s.success())
            .map_err(Into::into),
    })
}

/// `cargo xtask bench compare`.
fn run_compare(a: CompareArgs) -> Outcome {
    let root = workspace_root();
    let target = target_dir(&root);
    if a.clients.contains(&0) || a.secs <= 0.0 || a.workers == 0 {
        return Err("--clients, --secs and --workers must be positive".into());
    }
    let opts = bench::CompareOptions {
        rounds: a.rounds.into(),
        clients: a.clients,
        systems: a.systems,
        secs: a.secs,
        warmup: a.warmup,
        workers: a.workers,
        baseline: a.baseline,
        strace: a.strace,
        target,
        root,
    };
    bench::compare(&opts)
}

/// `cargo xtask bench service`.
fn run_service_bench(a: ServiceBenchArgs) -> Outcome {
    let root = workspace_root();
    let target = target_dir(&root);
    if a.clients.is_empty() || a.clients.contains(&0) || a.workers == 0 {
        return Err("--clients and --workers must be positive".into());
    }
    if !(f64::MIN_POSITIVE..=3600.0).contains(&a.secs) || !(0.0..=3600.0).contains(&a.warmup) {
        return Err("--secs must be in (0, 3600] and --warmup in [0, 3600]".into());
    }
    let opts = bench::service::ServiceOptions {
        rounds: a.rounds.into(),
        clients: a.clients,
        ops: a.ops,
        systems: a.systems,
        secs: a.secs,
        warmup: a.warmup,
        workers: a.workers,
        target,
        root,
    };
    bench::service::bench(&opts)
}
