//! The replicated directory of members' addresses (`id → {peer, client}`), and the
//! discovery that asks the configured backend first and the directory after it.
//!
//! The directory is part of the replicated state (a [`DirectoryCommand`] in the log),
//! so every member learns a joining node's addresses from the log. Each node keeps a
//! mirror of it that the transport and the not-leader hints read without asking the
//! node task.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use easyraft::discovery::{DiscoveryError, NodeAddress, ServiceDiscovery};
use easyraft::NodeId;
use serde::{Deserialize, Serialize};

/// Where a member is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    /// Its peer (Raft) address, `host:port`.
    pub peer: String,
    /// Its client address, `host:port` (unknown until it registered).
    pub client: Option<String>,
}

/// Every member's addresses, by id.
pub type Members = BTreeMap<String, MemberAddress>;

/// A change of the directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DirectoryCommand {
    /// Records (or replaces) a member's addresses.
    Set(String, MemberAddress),
    /// Forgets a member.
    Remove(String),
}

/// The directory's state, shared by the state machine (which writes it as it applies)
/// and its readers. Clones share it. Entries learned outside the log (a joining node
/// seeds the members it was told about, to answer them before it has the log) are
/// kept apart and only fill in what the log does not say.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    replicated: Arc<RwLock<Members>>,
    seeded: Arc<RwLock<Members>>,
}

impl Directory {
    pub(crate) fn apply(&self, command: DirectoryCommand) {
        let mut m = self.replicated.write().unwrap_or_else(|e| e.into_inner());
        match command {
            DirectoryCommand::Set(id, addr) => {
                m.insert(id, addr);
            }
            DirectoryCommand::Remove(id) => {
                m.remove(&id);
            }
        }
    }

    pub(crate) fn replace(&self, members: Members) {
        *self.replicated.write().unwrap_or_else(|e| e.into_inner()) = members;
    }

    /// The replicated entries.
    pub fn members(&self) -> Members {
        self.replicated.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Remembers addresses learned outside the log (used until the log says otherwise).
    pub fn seed(&self, members: Members) {
        self.seeded.write().unwrap_or_else(|e| e.into_inner()).extend(members);
    }

    /// A member's addresses: the log's, else a seeded one.
    pub fn get(&self, id: &str) -> Option<MemberAddress> {
        let replicated = self
            .replicated
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        replicated.or_else(|| self.seeded.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned())
    }

    /// A member's client address.
    pub fn client(&self, id: &str) -> Option<String> {
        self.get(id).and_then(|a| a.client)
    }
}

/// Discovery for the transport: the configured backend first (if any), then the
/// directory.
pub struct DirectoryDiscovery {
    configured: Option<Arc<dyn ServiceDiscovery>>,
    directory: Directory,
}

impl DirectoryDiscovery {
    /// Asks `configured` first, then `directory`.
    pub fn new(configured: Option<Arc<dyn ServiceDiscovery>>, directory: Directory) -> Self {
        DirectoryDiscovery { configured, directory }
    }
}

#[async_trait]
impl ServiceDiscovery for DirectoryDiscovery {
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError> {
        let configured = match &self.configured {
            Some(d) => d.get_node_address(id).await,
            None => Err(DiscoveryError::UnknownNode(id.clone())),
        };
        match configured {
            Ok(a) => Ok(a),
            Err(e) => match self.directory.get(id.as_str()) {
                Some(m) => m.peer.parse().map_err(|p| DiscoveryError::Backend {
                    backend: "directory",
                    reason: format!("node {id}: peer address {:?}: {p}", m.peer),
                }),
                None => Err(e),
            },
        }
    }

    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        let mut all: BTreeMap<NodeId, NodeAddress> = BTreeMap::new();
        for (id, m) in self.directory.members() {
            if let Ok(a) = m.peer.parse() {
                all.insert(NodeId::new(&id), a);
            }
        }
        if let Some(d) = &self.configured {
            all.extend(d.get_all_node_addresses().await?);
        }
        Ok(all)
    }

    async fn register_node(&self, id: &NodeId, address: NodeAddress) -> Result<(), DiscoveryError> {
        match &self.configured {
            Some(d) => d.register_node(id, address).await,
            None => Ok(()),
        }
    }

    async fn unregister_node(&self, id: &NodeId) -> Result<(), DiscoveryError> {
        match &self.configured {
            Some(d) => d.unregister_node(id).await,
            None => Ok(()),
        }
    }

    async fn refresh(&self) -> Result<(), DiscoveryError> {
        match &self.configured {
            Some(d) => d.refresh().await,
            None => Ok(()),
        }
    }
}
