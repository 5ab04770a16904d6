//! # raft-discovery
//!
//! Where each node lives. Discovery resolves a node id to a network address; it never
//! decides who is a member (that is a Raft decision, made through the log).
//!
//! Backends (see `docs/discovery.md`):
//! - [`StaticServiceDiscovery`]: a map given in code;
//! - [`FileServiceDiscovery`]: a JSON file, reloaded when it changes;
//! - `DnsServiceDiscovery` (feature `dns`): `{id}{suffix}` A/AAAA names or SRV records;
//! - `EtcdServiceDiscovery` (feature `etcd`): leased keys under a prefix, kept current by a watch;
//! - [`discovery_from_url`]: any of them from one string.
//!
//! ```
//! use raft_discovery::{NodeAddress, ServiceDiscovery, StaticServiceDiscovery};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), raft_discovery::DiscoveryError> {
//! let discovery = StaticServiceDiscovery::new([
//!     ("node1", NodeAddress::new("127.0.0.1", 5001)),
//!     ("node2", NodeAddress::new("127.0.0.1", 5002)),
//! ]);
//! assert_eq!(discovery.get_node_address(&"node2".into()).await?.port, 5002);
//! assert!(discovery.get_node_address(&"node9".into()).await.is_err());
//!
//! let same = raft_discovery::discovery_from_url("static:node1=127.0.0.1:5001,node2=127.0.0.1:5002")?;
//! assert_eq!(same.get_all_node_addresses().await?, discovery.get_all_node_addresses().await?);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod address;
#[cfg(feature = "dns")]
mod dns;
#[cfg(feature = "etcd")]
mod etcd;
mod file;
mod static_map;
#[cfg(feature = "testing")]
pub mod testing;
mod url;

pub use address::{NodeAddress, ParseAddressError};
#[cfg(feature = "dns")]
pub use dns::{DnsConfig, DnsLookup, DnsServiceDiscovery};
#[cfg(feature = "etcd")]
pub use etcd::{EtcdConfig, EtcdServiceDiscovery};
pub use file::FileServiceDiscovery;
pub use static_map::StaticServiceDiscovery;
pub use url::{discovery_from_url, URL_FORMATS};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use raft_core::NodeId;
use thiserror::Error;

/// Errors of a discovery backend. Each names what it was about (a node, a DNS
/// name, a file and line, a server) so that a log line is enough to act on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No address is known for the node.
    #[error("no address known for node {0}")]
    UnknownNode(NodeId),
    /// The backend refuses the operation (e.g. registering in a read-only source).
    #[error("{backend} discovery does not support {operation}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// The refused operation.
        operation: &'static str,
    },
    /// The backend answered with an error or with something it should not have.
    #[error("{backend} discovery failed: {reason}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A DNS name does not exist (NXDOMAIN) or has no records of the wanted type.
    #[error("DNS name {name} has no {record} records (asked {server})")]
    NameNotFound {
        /// The name that was looked up.
        name: String,
        /// The record type(s) asked for: "A/AAAA" or "SRV".
        record: &'static str,
        /// The name server asked.
        server: String,
    },
    /// A server did not answer within the configured time.
    #[error("{backend} server {server} did not answer within {after:?}")]
    Timeout {
        /// The backend.
        backend: &'static str,
        /// The server (or servers) asked.
        server: String,
        /// The configured timeout.
        after: Duration,
    },
    /// A server could not be reached (connection refused, reset, ...).
    #[error("{backend} server {server} is unreachable: {reason}")]
    Unreachable {
        /// The backend.
        backend: &'static str,
        /// The server (or servers) tried.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// A discovery file does not parse.
    #[error("{}:{line}:{column}: {reason}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong there.
        reason: String,
    },
    /// A discovery file names the same node twice.
    #[error("{}:{line}: node {id} is named twice", path.display())]
    DuplicateNode {
        /// The file.
        path: PathBuf,
        /// 1-based line of the second occurrence.
        line: usize,
        /// The node named twice.
        id: NodeId,
    },
    /// Reading or writing a discovery file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A discovery URL (see [`discovery_from_url`]) that does not parse.
    #[error("invalid discovery URL {url:?}: {reason}; expected one of: {}", URL_FORMATS.join(" | "))]
    InvalidUrl {
        /// The string given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where nodes live: resolve, list, register and unregister nodes.
#[async_trait]
pub trait ServiceDiscovery: Send + Sync + 'static {
    /// The address of node `id`.
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError>;

    /// Every known node and its address.
    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError>;

    /// Announces that node `id` is reachable at `address`.
    async fn register_node(&self, id: &NodeId, address: NodeAddress) -> Result<(), DiscoveryError>;

    /// Withdraws node `id`.
    async fn unregister_node(&self, id: &NodeId) -> Result<(), DiscoveryError>;

    /// Re-reads the backend (a file, DNS, etcd) instead of trusting cached answers.
    async fn refresh(&self) -> Result<(), DiscoveryError> {
        Ok(())
    }
}

#[async_trait]
impl<D: ServiceDiscovery + ?Sized> ServiceDiscovery for std::sync::Arc<D> {
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError> {
        (**self).get_node_address(id).await
    }
    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        (**self).get_all_node_addresses().await
    }
    async fn register_node(&self, id: &NodeId, address: NodeAddress) -> Result<(), DiscoveryError> {
        (**self).register_node(id, address).await
    }
    async fn unregister_node(&self, id: &NodeId) -> Result<(), DiscoveryError> {
        (**self).unregister_node(id).await
    }
    async fn refresh(&self) -> Result<(), DiscoveryError> {
        (**self).refresh().await
    }
}
