//! What a run of the demo is asked for ([`DemoOptions`], [`DemoTransport`]) and what
//! it reports ([`Report`]).

use std::time::Duration;

use crate::discovery::DemoDiscovery;
use crate::ui::Ui;

/// The network between the demo's nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoTransport {
    /// WebSocket: `ws://host:port/raft/`, binary frames.
    #[default]
    Ws,
    /// JSON-RPC 2.0 (HTTP and WebSocket on one port, `raft_appendEntries`, ...; peers
    /// keep one WebSocket JSON-RPC connection each).
    JsonRpc,
}

impl DemoTransport {
    pub(super) fn title(self) -> &'static str {
        match self {
            DemoTransport::Ws => "WebSocket",
            DemoTransport::JsonRpc => "JSON-RPC 2.0",
        }
    }
}

/// What `cargo xtask demo` runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Cluster size: 3, 5 or 7.
    pub nodes: usize,
    /// The transport between the nodes.
    pub transport: DemoTransport,
    /// How the nodes find each other (static maps, files, DNS or etcd).
    pub discovery: DemoDiscovery,
    /// The first node's port (the others follow); `None` picks free ports.
    pub base_port: Option<u16>,
    /// Writes per phase (three phases).
    pub writes: usize,
    /// Output.
    pub ui: Ui,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            nodes: 3,
            transport: DemoTransport::Ws,
            discovery: DemoDiscovery::Static,
            base_port: None,
            writes: 40,
            ui: Ui::plain(),
        }
    }
}

/// The outcome.
#[derive(Clone, Debug)]
pub struct Report {
    /// Whether every check passed.
    pub passed: bool,
    /// The one-line verdict.
    pub verdict: String,
    /// The checks and whether each passed.
    pub checks: Vec<(String, bool)>,
    /// The applied index every node reached.
    pub entries: u64,
    /// Keys in the replicated map.
    pub keys: usize,
    /// Writes the cluster acknowledged.
    pub acknowledged: usize,
    /// Wall time of the whole demo.
    pub elapsed: Duration,
}
