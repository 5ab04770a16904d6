//! # raft-discovery
//!
//! Where each node lives. Discovery resolves a node id to a network address; it never
//! decides who is a member (that is a Raft decision, made through the log).
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
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod address;
mod static_map;

pub use address::{NodeAddress, ParseAddressError};
pub use static_map::StaticServiceDiscovery;

use std::collections::BTreeMap;

use async_trait::async_trait;
use raft_core::NodeId;
use thiserror::Error;

/// Errors of a discovery backend.
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
    /// The backend could not be reached or answered garbage.
    #[error("{backend} discovery failed: {reason}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// The seed's `IServiceDiscovery`: resolve, list, register and unregister nodes.
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
