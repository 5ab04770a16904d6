//! What the three services share: a late-bound handle (the API is registered before
//! the node starts), and the mapping of Raft errors to JSON-RPC errors.

use std::sync::{Arc, OnceLock};

use easyraft::{Error, RaftHandle, StateMachine};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde_json::json;

/// The request reached a follower: `data` is `{"leader": id, "address": "host:port"}`.
pub const NOT_LEADER: i32 = -32020;
/// The outcome is unknown (timeout): the write may or may not have happened.
pub const UNKNOWN_OUTCOME: i32 = -32021;
/// The node is not ready or has stopped.
pub const UNAVAILABLE: i32 = -32022;
/// The request is valid JSON-RPC but makes no sense for the service.
pub const BAD_REQUEST: i32 = -32602;

/// The node's handle, set once the node has started. Clones share the slot.
pub struct Node<SM: StateMachine> {
    handle: Arc<OnceLock<RaftHandle<SM>>>,
    /// Where each node's API listens, for redirect hints.
    addresses: Arc<std::collections::BTreeMap<String, String>>,
}

impl<SM: StateMachine> Clone for Node<SM> {
    fn clone(&self) -> Self {
        Node {
            handle: self.handle.clone(),
            addresses: self.addresses.clone(),
        }
    }
}

impl<SM: StateMachine> Node<SM> {
    /// A slot for the handle, with the API addresses of all nodes.
    pub fn new(addresses: std::collections::BTreeMap<String, String>) -> Self {
        Node {
            handle: Arc::new(OnceLock::new()),
            addresses: Arc::new(addresses),
        }
    }

    /// Sets the handle (once the node started).
    pub fn set(&self, handle: RaftHandle<SM>) {
        let _ = self.handle.set(handle);
    }

    /// The handle, or an "unavailable" error while the node starts.
    pub fn get(&self) -> Result<&RaftHandle<SM>, ErrorObjectOwned> {
        self.handle
            .get()
            .ok_or_else(|| ErrorObject::owned(UNAVAILABLE, "node starting", None::<()>))
    }

    /// Maps a runtime error to a JSON-RPC error (with a redirect hint for NotLeader).
    pub fn error(&self, e: Error) -> ErrorObjectOwned {
        match &e {
            Error::NotLeader { leader_hint } => {
                let leader = leader_hint.as_ref().map(|l| l.to_string());
                let address = leader.as_ref().and_then(|l| self.addresses.get(l)).cloned();
                ErrorObject::owned(
                    NOT_LEADER,
                    "not the leader; retry on the leader",
                    Some(json!({ "leader": leader, "address": address })),
                )
            }
            Error::Timeout(_) => ErrorObject::owned(UNKNOWN_OUTCOME, e.to_string(), None::<()>),
            _ => ErrorObject::owned(UNAVAILABLE, e.to_string(), None::<()>),
        }
    }
}

/// Milliseconds since the Unix epoch on this node's clock. Only the leader reads it,
/// to stamp commands; replicas use the stamped value.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Encodes a snapshot of a serializable state.
pub fn encode<T: serde::Serialize>(state: &T) -> Result<bytes::Bytes, easyraft::BoxError> {
    Ok(postcard::to_allocvec(state)?.into())
}

/// Decodes a snapshot.
pub fn decode<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, easyraft::BoxError> {
    Ok(postcard::from_bytes(data)?)
}
