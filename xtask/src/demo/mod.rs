//! `cargo xtask demo`: a real N-node cluster on loopback, over WebSocket (default) or
//! JSON-RPC (`--transport jsonrpc`), put through an election, replication, a leader
//! crash, a restart from disk and a partition, then checked: every acknowledged write
//! on every node, every node in the same state.
//!
//! The pieces, from the top: the two transports' setup (`setup`), the script that runs
//! the steps in order (`script`), steps 1 to 5 (`failover`), 6 and 7 (`partition`),
//! step 8 and its checks (`verify`); under them what the steps read of the nodes
//! (`status`), the write phases and their retrying client (`client`), and the types
//! every step shares (`scene`) and the options and report (`options`). What the services demo shares with this one (timing,
//! waiting, the election and the restart) is in `common`.

use crate::error::TaskError;

mod client;
pub(crate) mod common;
mod failover;
mod options;
mod partition;
mod scene;
mod script;
mod setup;
mod status;
mod verify;

pub use options::{DemoOptions, DemoTransport, Report};

/// Runs the demo, printing as it goes.
pub async fn run(opts: DemoOptions) -> Result<Report, TaskError> {
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
