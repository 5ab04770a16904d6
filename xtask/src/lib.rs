//! easyraft's developer tasks, run as `cargo xtask <task>` from the repository root
//! (the alias lives in `.cargo/config.toml`):
//!
//! - `cargo xtask demo`: a real WebSocket (or `--transport jsonrpc`) cluster on
//!   loopback, put through an election, a leader crash, a restart from disk and a
//!   partition, then checked.
//! - `cargo xtask demo kv|lock|config`: one of the `examples` services on a 3-node
//!   cluster, used over HTTP JSON-RPC through a leader crash, then checked.
//! - `cargo xtask chaos`: node processes put through SIGKILL, SIGSTOP, partitions,
//!   loss, one-way cuts, clock skew, membership churn and disk faults
//!   while clients record a history, then checked for linearizability ([`chaos`]).
//! - One node per process is `easyraft-server` (`cargo run -p easyraft-server`), not an
//!   xtask.
//! - `cargo xtask test`: the whole suite on a fresh machine, prerequisites included
//!   ([`suite`]).
//! - `cargo xtask bench`: the criterion benches; `cargo xtask bench compare`: easyraft
//!   beside openraft on one workload, interleaved ([`bench`]).
#![warn(missing_docs, unreachable_pub)]

pub mod bench;
pub mod chaos;
pub mod demo;
pub mod discovery;
pub mod error;
pub mod fuzz;
pub mod http;
mod ports;
pub mod relay;
pub mod rng;
pub mod services;
pub mod suite;
pub mod ui;
pub mod workspace;
