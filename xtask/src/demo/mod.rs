//! `cargo xtask demo`: a real N-node cluster on loopback, over WebSocket (default) or
//! JSON-RPC (`--transport jsonrpc`), put through an election, replication, a leader
//! crash, a restart from disk and a partition, then checked: every acknowledged write
//! on every node, every node in the same state.
//!
//! The pieces: the two transports' setup (`setup`), the script's steps 1 to 5
//! (`scenario`) and 6 to 7 (`partition`), step 8 and its checks (`verify`), the status
//! tables (`status`), the write phases and their retrying client (`client`), and the
//! ports (`ports`).

use std::time::{Duration, Instant};

use easyraft::prelude::*;

use crate::discovery::DemoDiscovery;
use crate::ui::Ui;

mod client;
mod partition;
mod ports;
mod scenario;
mod setup;
mod status;
mod verify;

pub(crate) use ports::{free_ports, loopback};

/// Any error that ends the demo early.
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

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
    fn title(self) -> &'static str {
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

/// `FAIL: ` and the checks that failed, joined by `; ` (the demos' verdict when one
/// failed).
pub(crate) fn fail_verdict(checks: &[(String, bool)]) -> String {
    let failed: Vec<&str> = checks.iter().filter(|(_, ok)| !ok).map(|(c, _)| c.as_str()).collect();
    format!("FAIL: {}", failed.join("; "))
}

const STEPS: usize = 8;
const WAIT: Duration = Duration::from_secs(15);

/// Timing for a demo on one (possibly busy) machine: elections within about a second.
/// The services demo uses it too.
pub(crate) fn demo_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(400),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(3),
        ..RaftConfig::default()
    }
}

/// Runs the demo, printing as it goes.
pub async fn run(opts: DemoOptions) -> Result<Report, DemoError> {
    // Free ports are picked by binding and releasing them; another process may take
    // one before a node binds it. Then the demo starts again on other ports (only when
    // it picked them itself).
    let mut attempt = 0;
    loop {
        match setup::run_once(opts.clone()).await {
            Err(e) if opts.base_port.is_none() && attempt < 2 && e.to_string().contains("Address already in use") => {
                attempt += 1;
                eprintln!("easyraft demo: {e}; starting again on other ports");
            }
            other => return other,
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes. The services demo uses it too.
pub(crate) async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
