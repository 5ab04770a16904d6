//! `cargo xtask chaos` and its node processes (`cargo xtask chaos-node`): their
//! arguments and the runs they start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use easyraft::discovery::NodeAddress;
use easyraft::NodeId;
use xtask::chaos::faults::Fault;
use xtask::chaos::node::{self, ChaosNodeOptions};
use xtask::chaos::{self, ChaosOptions};

use super::{finish, logging, runtime, Outcome};

#[derive(clap::Args)]
pub(crate) struct ChaosArgs {
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
    faults: Vec<Fault>,
    /// Deliberately unsafe: the clients read with `kv_get {"stale": true}` (the
    /// node's local state, no ReadIndex), so the run must FAIL: a check of the checker.
    #[arg(long)]
    stale_reads: bool,
}

#[derive(clap::Args)]
pub(crate) struct ChaosNodeArgs {
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
    #[arg(long, required = true, value_delimiter = ',', value_parser = node::parse_peer)]
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

/// `cargo xtask chaos`.
pub(crate) fn run(a: ChaosArgs) -> ExitCode {
    // Clients and faults make the relays and the transport complain on purpose.
    logging("error");
    finish(run_chaos(a))
}

fn run_chaos(a: ChaosArgs) -> Outcome {
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

/// `cargo xtask chaos-node`: exit code 2 when `--peers` does not name this node at
/// its port.
pub(crate) fn run_node(a: ChaosNodeArgs) -> ExitCode {
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
    finish(runtime().map_err(Into::into).and_then(|rt| {
        let done = rt.block_on(node::run(opts));
        rt.shutdown_background();
        done.map(|()| true)
    }))
}
