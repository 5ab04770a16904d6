//! `cargo xtask`: see the library's documentation.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use easyraft::discovery::NodeAddress;
use easyraft::NodeId;
use tracing_subscriber::EnvFilter;
use xtask::demo::{self, DemoOptions};
use xtask::node::{self, NodeOptions};
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
    /// Start a real Raft cluster over WebSocket on 127.0.0.1 and put it through an
    /// election, replication, a leader crash, a restart from disk and a network
    /// partition; finish with a verdict checked on every node.
    ///
    /// Logs go to stderr at level `warn`; set RUST_LOG (e.g. RUST_LOG=info) for more.
    Demo(DemoArgs),
    /// Run one key-value node in this process until Ctrl-C (one process per node)
    ///
    /// Example, in three terminals:
    ///   cargo xtask node --id node1 --port 5001 --peers node1=127.0.0.1:5001,node2=127.0.0.1:5002,node3=127.0.0.1:5003
    ///   (then --id node2 --port 5002 and --id node3 --port 5003 with the same --peers)
    ///
    /// Type `set KEY VALUE`, `get KEY`, `del KEY` or `status` on a node's stdin;
    /// `curl http://127.0.0.1:5001/status` shows its role, term, leader and indexes.
    #[command(verbatim_doc_comment)]
    Node(NodeArgs),
    /// Run the criterion benches: `cargo bench -p benches [ARGS...]`.
    Bench {
        /// Passed to `cargo bench -p benches` (e.g. `--bench core`, `-- --test`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::PossibleValuesParser::new(["3", "5", "7"]).map(|s| s.parse::<usize>().unwrap_or(3)))]
    nodes: usize,
    /// The transport between nodes.
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    transport: Transport,
    /// The first node's port; the others follow (default: free ports the OS picks).
    #[arg(long, value_name = "PORT")]
    base_port: Option<u16>,
    /// Writes in each of the three write phases.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=5000))]
    writes: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Transport {
    /// WebSocket (`ws://host:port/raft/`, binary postcard frames).
    Ws,
}

#[derive(clap::Args)]
struct NodeArgs {
    /// This node's id (one of --peers).
    #[arg(long)]
    id: String,
    /// The port to listen on (default: the one --peers gives for --id).
    #[arg(long)]
    port: Option<u16>,
    /// Every founding member as id=host:port, comma-separated, this node included.
    #[arg(long, required = true, value_delimiter = ',', value_parser = node::parse_peer)]
    peers: Vec<(NodeId, NodeAddress)>,
    /// Where logs live (one subdirectory per node) [default: target/xtask-node].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A shared cluster token every connection must present.
    #[arg(long)]
    token: Option<String>,
    /// The cluster id, checked at every handshake.
    #[arg(long, default_value = "easyraft")]
    cluster_id: String,
    /// Listen on 0.0.0.0 instead of the host --peers gives for --id.
    #[arg(long)]
    listen_any: bool,
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
            logging("warn,raft_transport_ws::server=error");
            let Transport::Ws = a.transport;
            let opts = DemoOptions {
                nodes: a.nodes,
                base_port: a.base_port,
                writes: a.writes.into(),
                ui: Ui::detect(),
            };
            runtime()
                .map_err(Into::into)
                .and_then(|rt| rt.block_on(demo::run(opts)))
                .map(|r| r.passed)
        }
        Task::Node(a) => {
            logging("info");
            let opts = NodeOptions {
                id: NodeId::new(&a.id),
                port: a.port,
                peers: a.peers,
                data_dir: a.data_dir.unwrap_or_else(default_data_dir),
                token: a.token,
                cluster_id: a.cluster_id,
                listen_any: a.listen_any,
            };
            runtime().map_err(Into::into).and_then(|rt| {
                let done = rt.block_on(node::run(opts));
                // A blocking read of stdin may still be pending: do not wait for it.
                rt.shutdown_background();
                done.map(|()| true)
            })
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
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `target/xtask-node` in the workspace.
fn default_data_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.parent().unwrap_or(&root).join("target").join("xtask-node")
}
