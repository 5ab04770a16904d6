//! Why a server could not start or stopped: each error names the key, file, address
//! or peer it is about.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::ConfigError;

/// Why a server could not start or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be opened.
    #[error("data_dir {}: {reason}", path.display())]
    Storage {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A listener cannot be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Listen {
        /// `listen_client` or `listen_peer`.
        key: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The discovery URL.
    #[error("discovery: {0}")]
    Discovery(#[from] easyraft::discovery::DiscoveryError),
    /// The node.
    #[error("node: {0}")]
    Node(#[from] easyraft::Error),
    /// Joining the cluster through `address` failed.
    #[error("join through {address}: {reason}")]
    Join {
        /// The member asked.
        address: String,
        /// Why.
        reason: String,
    },
    /// A JSON-RPC call to another member failed.
    #[error("call {method} on {address}: {reason}")]
    Call {
        /// The method.
        method: String,
        /// The member's client address.
        address: String,
        /// Why (the JSON-RPC error's code and message, or the transport's).
        reason: String,
        /// The JSON-RPC error code, if the member answered with one.
        code: Option<i32>,
        /// The error's data, if any.
        data: Option<serde_json::Value>,
    },
}
