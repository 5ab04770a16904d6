//! The server's errors: each names the key, file, address or peer it is about.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::Origin;

/// A configuration that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse, or a value in it has the wrong type.
    #[error("{}:{line}: key `{key}`: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The dotted key on that line (`raft.election_timeout`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An environment variable or flag has a bad value.
    #[error("{origin}: key `{key}`: {reason}")]
    Override {
        /// The dotted key.
        key: String,
        /// The variable or flag.
        origin: Origin,
        /// What is wrong.
        reason: String,
    },
    /// The settings are inconsistent or incomplete.
    #[error("key `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A token file cannot be read or is empty.
    #[error("key `{key}`: {}: {reason}", path.display())]
    TokenFile {
        /// `peer_token_file` or `admin_token_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A bug: the configuration could not be converted.
    #[error("internal: {0}")]
    Internal(String),
}

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
