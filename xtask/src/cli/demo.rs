//! `cargo xtask demo [kv|lock|config]`: its arguments, and the Raft demo or the
//! services demo they start.

use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::ValueEnum;
use xtask::demo::{self, DemoOptions, DemoTransport};
use xtask::discovery::DemoDiscovery;
use xtask::services::{self, Service, ServiceOptions};
use xtask::ui::Ui;

use super::{finish, logging, runtime, Outcome};

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
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

/// `cargo xtask demo [kv|lock|config]`.
pub(crate) fn run(a: DemoArgs) -> ExitCode {
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
    finish(
        runtime()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(demo::run(opts)))
            .map(|r| r.passed),
    )
}

/// `cargo xtask demo kv|lock|config`.
fn run_service(service: ServiceArg, a: DemoArgs) -> Outcome {
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
