//! # easyraft-server
//!
//! easyraft as a service: one process runs one node that serves the kv, lock,
//! config, registry and queue services (all five by default) over HTTP JSON-RPC on its
//! client port, with
//! an admin API (members, add learner, promote, remove, replace, transfer leadership,
//! status) and `GET /health`, `/status`, `/metrics`; Raft traffic goes over WebSocket
//! on the peer port. The API is described in `docs/server-api.md`, the configuration
//! in `deploy/easyraft.toml`.
//!
//! ```no_run
//! use easyraft_server::config::{Config, InitialCluster};
//!
//! # async fn demo() -> Result<(), easyraft_server::ServerError> {
//! let config = Config {
//!     id: "node1".into(),
//!     data_dir: "/var/lib/easyraft".into(),
//!     initial_cluster: InitialCluster(
//!         [("node1".to_string(), "10.0.0.1:7001".to_string())].into(),
//!     ),
//!     admin_insecure: true,
//!     ..Config::default()
//! };
//! // Serves until SIGTERM or Ctrl-C.
//! easyraft_server::run(config).await
//! # }
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod admin;
mod bootstrap;
pub mod cli;
pub mod client;
pub mod config;
pub mod directory;
pub use easyraft::cluster::duration;
mod error;
pub mod http;
mod join;
pub mod machine;
pub mod recover;
mod register;
pub mod rpc_codes;
mod server;
pub mod tls;

pub use config::ConfigError;
pub use error::ServerError;
pub use server::{run, Server};
