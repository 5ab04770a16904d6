//! `cargo xtask`: see the library's documentation.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use easyraft::discovery::NodeAddress;
use easyraft::NodeId;
use tracing_subscriber::EnvFilter;
use xtask::bench;
use xtask::chaos::node::ChaosNodeOptions;
use xtask::chaos::{self, ChaosOptions};
use xtask::demo::{self, DemoOptions, DemoTransport};
use xtask::discovery::DemoDiscovery;
use xtask::services::{self, Service, ServiceOptions};
use xtask::ui::Ui;

/// easyraft's developer tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start a real Raft cluster over WebSocket (or --transport jsonrpc) on 127.0.0.1
    /// and put it through an election, replication, a leader crash, a restart from disk
    /// and a network partition; finish with a verdict checked on every node.
    ///
    /// `cargo xtask demo kv|lock|config` runs one of the example services instead: a
    /// 3-node cluster serving its JSON-RPC API, used over HTTP like `curl` would,
    /// through a leader crash.
    ///
    /// Logs go to stderr at level `warn`; set RUST_LOG (e.g. RUST_LOG=info) for more.
    Demo(DemoArgs),
    /// Whole-system chaos: node processes, concurrent clients recording a history,
    /// SIGKILL / SIGSTOP / partitions / loss / one-way cuts / clock skew / membership
    /// churn / disk faults chosen by a seeded RNG, then the history checked
    /// for linearizability and lost acknowledged writes. Exits non-zero on a violation.
    Chaos(ChaosArgs),
    /// One node of `cargo xtask chaos` (started by it).
    #[command(hide = true)]
    ChaosNode(ChaosNodeArgs),
    /// Fuzz everything read from the network or the disk: each cargo-fuzz target in
    /// `fuzz/` (wire decoders, JSON payloads, the services' params, a mutated data
    /// directory, the core fed any messages) for `--seconds`, from the checked-in
    /// seeds. Installs cargo-fuzz if missing (needs the nightly toolchain). Exits
    /// non-zero on a crash, naming the input.
    Fuzz(FuzzArgs),
    /// Run the whole test suite on a fresh machine: install what it needs (etcd, a
    /// Python virtual environment with `websockets`), run every test (cargo-nextest
    /// when installed, else cargo test), the doctests, the benches in test mode and
    /// curl against a real `kv` cluster; end with one summary line.
    Test(TestArgs),
    /// Run the criterion benches: `cargo bench -p benches [ARGS...]`.
    ///
    /// `cargo xtask bench compare [--rounds 5] [--clients 1,256,1024] [--baseline REV]
    /// [--strace]` runs easyraft (MemStorage and FileStorage), openraft 0.10 and 0.9 on
    /// one workload, interleaved, and prints commits/s and p99 with the ratios
    /// (`cargo xtask bench compare --help` for every option; docs/testing.md).
    ///
    /// `cargo xtask bench service [--rounds 3] [--clients 1,16,256,1024] [--ops put,get]`
    /// runs 3 easyraft-server processes, the in-process ceiling and 3 etcd members,
    /// interleaved, under one HTTP load generator, and prints ops/s and p99 with the
    /// ratios (`cargo xtask bench service --help`).
    #[command(verbatim_doc_comment)]
    Bench {
        /// Passed to `cargo bench -p benches` (e.g. `--bench core`, `-- --test`), or
        /// `compare ...`, or `service ...`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

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

#[derive(clap::Args)]
struct DemoArgs {
    /// Run this example service (over JSON-RPC) instead of the Raft demo.
    #[arg(value_enum)]
    service: Option<ServiceArg>,
    /// How many nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::PossibleValuesParser::new(["3", "5", "7"]).map(|s| s.parse::<usize>().unwrap_or(3)))]
    nodes: usize,
    /// The transport between nodes [default: ws; the services always use jsonrpc].
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// How nodes find each other: static maps, JSON files, SRV records from a DNS
    /// server started on loopback, or a real etcd started on loopback (install
    /// Debian's etcd-server).
    #[arg(long, value_enum, default_value_t = Discovery::Static)]
    discovery: Discovery,
    /// The first node's port; the others follow (default: free ports the OS picks).
    #[arg(long, value_name = "PORT")]
    base_port: Option<u16>,
    /// Writes in each of the three write phases (kv: twice as many during the leader kill).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=5000))]
    writes: u16,
    /// Services only: keep the cluster running after the verdict, until Ctrl-C, to try
    /// the printed `curl` commands.
    #[arg(long)]
    hold: bool,
}

#[derive(clap::Args)]
struct TestArgs {
    /// Test only these packages (repeatable); the extra steps (benches, curl) run only
    /// for the whole workspace or when their package is named.
    #[arg(short = 'p', long = "package", value_name = "PACKAGE")]
    packages: Vec<String>,
    /// Install nothing; tests that need a missing prerequisite fail and say so.
    #[arg(long)]
    no_install: bool,
    /// Use `cargo test` even when cargo-nextest is installed.
    #[arg(long)]
    cargo_test: bool,
    /// Passed to `cargo nextest run` (or `cargo test`) as they are, e.g. a test filter.
    #[arg(last = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(clap::Args)]
struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Only these targets, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
}

#[derive(clap::Args)]
struct ChaosArgs {
    /// How many node processes.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::PossibleValuesParser::new(["3", "5"]).map(|s| s.parse::<usize>().unwrap_or(3)))]
    nodes: usize,
    /// Seconds of faults (the run lasts a little longer: start, final reads, check).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    clients: u16,
    /// How many keys the clients share.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    keys: u16,
    /// The seed of the faults and ops [default: from the clock, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// The faults to inject, comma-separated (an empty list injects none).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,pause,partition,loss,one-way,skew,churn,disk-eio,disk-full,disk-slow"
    )]
    faults: Vec<xtask::chaos::faults::Fault>,
    /// Deliberately unsafe: the clients read with `kv_get {"stale": true}` (the
    /// node's local state, no ReadIndex), so the run must FAIL: a check of the checker.
    #[arg(long)]
    stale_reads: bool,
}

#[derive(clap::Args)]
struct ChaosNodeArgs {
    /// This node's id.
    #[arg(long)]
    id: String,
    /// Its Raft port (must match --peers).
    #[arg(long)]
    port: u16,
    /// Its API port (kv and admin methods, on 127.0.0.1).
    #[arg(long)]
    api_port: u16,
    /// Every node as id=host:port: this one's own address, the others' relays.
    #[arg(long, required = true, value_delimiter = ',', value_parser = xtask::chaos::node::parse_peer)]
    peers: Vec<(NodeId, NodeAddress)>,
    /// The founding voters, comma-separated; absent for a node that joins the running
    /// cluster (the leader adds it as a learner).
    #[arg(long, value_delimiter = ',')]
    voters: Vec<String>,
    /// The data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// The cluster token.
    #[arg(long)]
    token: String,
    /// How fast this node's clock runs against real time: its heartbeat interval,
    /// election timeout and request timeout take 1/RATE of their real durations.
    #[arg(long, default_value_t = 1.0)]
    clock_rate: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum ServiceArg {
    /// The replicated key-value store: kv_put, kv_get, kv_cas, kv_scan, kv_delete.
    Kv,
    /// The distributed lock with fencing tokens: lock_acquire, lock_renew, lock_release.
    Lock,
    /// The configuration center: config_set, config_get, config_list, config_watch.
    Config,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Discovery {
    /// A map in memory per node.
    Static,
    /// One JSON file per node (a map from id to address), read with file://.
    File,
    /// SRV records from a DNS server started in this process, read with dns+srv://.
    Dns,
    /// A real etcd started on free loopback ports (needs the `etcd` binary).
    Etcd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Transport {
    /// WebSocket (`ws://host:port/raft/`, binary postcard frames).
    Ws,
    /// JSON-RPC 2.0 (`raft_appendEntries`, ... over HTTP and WebSocket on one port).
    Jsonrpc,
}

/// Logs to stderr; `RUST_LOG` overrides `default`.
fn logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<bool, demo::DemoError> = match cli.task {
        Task::Demo(a) => {
            // The demo kills a node and cuts links on purpose: the WebSocket server's
            // warnings about connections reset by that are expected, so they stay out.
            // With --discovery etcd, the demo's etcd stops while the last nodes shut
            // down: their discoveries' "lost the connection" warnings are expected too.
            logging("warn,raft_transport_ws::server=error,raft_discovery::etcd=error");
            if let Some(service) = a.service {
                return finish(run_service(service, a));
            }
            if a.hold {
                eprintln!("error: --hold applies to `cargo xtask demo kv|lock|config`");
                return ExitCode::from(2);
            }
            let opts = DemoOptions {
                nodes: a.nodes,
                transport: match a.transport {
                    None | Some(Transport::Ws) => DemoTransport::Ws,
                    Some(Transport::Jsonrpc) => DemoTransport::JsonRpc,
                },
                discovery: match a.discovery {
                    Discovery::Static => DemoDiscovery::Static,
                    Discovery::File => DemoDiscovery::File,
                    Discovery::Dns => DemoDiscovery::Dns,
                    Discovery::Etcd => DemoDiscovery::Etcd,
                },
                base_port: a.base_port,
                writes: a.writes.into(),
                ui: Ui::detect(),
            };
            runtime()
                .map_err(Into::into)
                .and_then(|rt| rt.block_on(demo::run(opts)))
                .map(|r| r.passed)
        }
        Task::Fuzz(a) => match xtask::fuzz::run(&xtask::fuzz::FuzzOptions {
            seconds: a.seconds,
            targets: a.targets,
        }) {
            Ok(runs) => Ok(runs.iter().all(|r| r.crash.is_none())),
            Err(e) => {
                eprintln!("xtask fuzz: {e}");
                Ok(false)
            }
        },
        Task::Chaos(a) => {
            // Clients and faults make the relays and the transport complain on purpose.
            logging("error");
            run_chaos(a)
        }
        Task::ChaosNode(a) => {
            logging("warn");
            if a.peers
                .iter()
                .all(|(id, addr)| id.as_str() != a.id || addr.port != a.port)
            {
                eprintln!("error: --peers must give {} at port {}", a.id, a.port);
                return ExitCode::from(2);
            }
            let opts = ChaosNodeOptions {
                id: NodeId::new(&a.id),
                peers: a.peers,
                api_port: a.api_port,
                voters: a.voters.iter().map(NodeId::new).collect(),
                data_dir: a.data_dir,
                token: a.token,
                clock_rate: a.clock_rate,
            };
            runtime().map_err(Into::into).and_then(|rt| {
                let done = rt.block_on(chaos::node::run(opts));
                rt.shutdown_background();
                done.map(|()| true)
            })
        }
        Task::Test(a) => {
            let opts = xtask::suite::SuiteOptions {
                packages: a.packages,
                no_install: a.no_install,
                cargo_test: a.cargo_test,
                args: a.args,
            };
            return match xtask::suite::run(opts) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(xtask::suite::SuiteError::Missing(m)) => {
                    eprintln!("{m}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("xtask test: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Task::Bench { args } if args.first().is_some_and(|a| a == "service") => {
            let a = ServiceBenchArgs::parse_from(
                std::iter::once("cargo xtask bench service".to_owned()).chain(args.into_iter().skip(1)),
            );
            run_service_bench(a)
        }
        Task::Bench { args } if args.first().is_some_and(|a| a == "compare") => {
            let a = CompareArgs::parse_from(
                std::iter::once("cargo xtask bench compare".to_owned()).chain(args.into_iter().skip(1)),
            );
            run_compare(a)
        }
        Task::Bench { args } => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            std::process::Command::new(cargo)
                .args(["bench", "-p", "benches"])
                .args(args)
                .status()
                .map(|s| s.success())
                .map_err(Into::into)
        }
    };
    finish(result)
}

fn finish(result: Result<bool, demo::DemoError>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask demo kv|lock|config`.
fn run_service(service: ServiceArg, a: DemoArgs) -> Result<bool, demo::DemoError> {
    if let Some(Transport::Ws) = a.transport {
        return Err("the services serve their API over JSON-RPC: drop --transport ws".into());
    }
    if a.base_port.is_some() {
        return Err("--base-port applies to the Raft demo only; the services pick free ports".into());
    }
    if a.discovery != Discovery::Static {
        return Err("--discovery applies to the Raft demo only".into());
    }
    let opts = ServiceOptions {
        service: match service {
            ServiceArg::Kv => Service::Kv,
            ServiceArg::Lock => Service::Lock,
            ServiceArg::Config => Service::Config,
        },
        nodes: a.nodes,
        writes: usize::from(a.writes) * 2,
        ui: Ui::detect(),
        hold: a.hold,
    };
    let rt = runtime()?;
    rt.block_on(services::run(opts)).map(|r| r.passed)
}

/// `cargo xtask chaos`.
fn run_chaos(a: ChaosArgs) -> Result<bool, demo::DemoError> {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let mut opts = ChaosOptions::new(seed)?;
    opts.nodes = a.nodes;
    opts.duration = std::time::Duration::from_secs(a.duration);
    opts.clients = a.clients.into();
    opts.keys = a.keys.into();
    opts.faults = a.faults;
    opts.faults.dedup();
    opts.stale_reads = a.stale_reads;
    let rt = runtime()?;
    rt.block_on(chaos::run(opts)).map(|r| r.passed)
}

/// `cargo xtask bench compare`.
fn run_compare(a: CompareArgs) -> Result<bool, demo::DemoError> {
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

fn run_service_bench(a: ServiceBenchArgs) -> Result<bool, demo::DemoError> {
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

/// The cargo target directory (`CARGO_TARGET_DIR`, relative to `root` if relative;
/// `root/target` by default).
fn target_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    if target.is_absolute() {
        target
    } else {
        root.join(target)
    }
}

fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.parent().map_or(root.clone(), PathBuf::from)
}
