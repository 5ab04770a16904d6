//! A fixed map of node ids to addresses.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;
use raft_core::NodeId;

use crate::{DiscoveryError, NodeAddress, ServiceDiscovery};

/// Discovery from a map given in code. `register_node`/`unregister_node` change the
/// map in memory.
#[derive(Debug, Default)]
pub struct StaticServiceDiscovery {
    map: RwLock<BTreeMap<NodeId, NodeAddress>>,
}

impl StaticServiceDiscovery {
    /// A discovery over the given pairs.
    pub fn new<I, N>(nodes: I) -> Self
    where
        I: IntoIterator<Item = (N, NodeAddress)>,
        N: Into<NodeId>,
    {
        StaticServiceDiscovery {
            map: RwLock::new(nodes.into_iter().map(|(n, a)| (n.into(), a)).collect()),
        }
    }

    /// The short form: `(node_id, port)` pairs on `127.0.0.1`.
    pub fn localhost<I, N>(nodes: I) -> Self
    where
        I: IntoIterator<Item = (N, u16)>,
        N: Into<NodeId>,
    {
        Self::new(nodes.into_iter().map(|(n, p)| (n, NodeAddress::new("127.0.0.1", p))))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, NodeAddress>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<NodeId, NodeAddress>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ServiceDiscovery for StaticServiceDiscovery {
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError> {
        self.read()
            .get(id)
            .cloned()
            .ok_or_else(|| DiscoveryError::UnknownNode(id.clone()))
    }

    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        Ok(self.read().clone())
    }

    async fn register_node(&self, id: &NodeId, address: NodeAddress) -> Result<(), DiscoveryError> {
        self.write().insert(id.clone(), address);
        Ok(())
    }

    async fn unregister_node(&self, id: &NodeId) -> Result<(), DiscoveryError> {
        self.write()
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| DiscoveryError::UnknownNode(id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn register_unregister_and_unknown_ids() {
        let d = StaticServiceDiscovery::localhost([("node1", 5001)]);
        let n2 = NodeId::new("node2");
        assert!(matches!(
            d.get_node_address(&n2).await,
            Err(DiscoveryError::UnknownNode(_))
        ));
        d.register_node(&n2, NodeAddress::new("10.0.0.2", 80)).await.unwrap();
        assert_eq!(d.get_node_address(&n2).await.unwrap().host, "10.0.0.2");
        assert_eq!(d.get_all_node_addresses().await.unwrap().len(), 2);
        d.unregister_node(&n2).await.unwrap();
        assert!(d.unregister_node(&n2).await.is_err());
    }
}
