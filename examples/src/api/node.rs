//! The node a service's methods run on ([`Node`]): its handle, where the other nodes'
//! APIs listen, the mapping of Raft errors to JSON-RPC errors, and the proposing and
//! querying of a service's commands over any machine that [`Hosts`] it.

use std::collections::BTreeMap;
use std::sync::Arc;

use easyraft::cluster::sessions::SessionResponse;
use easyraft::{Error, RaftHandle, StateMachine};
use easyraft_client::codes::{BACKPRESSURE, BAD_REQUEST, NOT_APPLIED, NOT_LEADER, UNAVAILABLE, UNKNOWN_OUTCOME};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde_json::json;

use super::hosts::Hosts;
use super::params::bad;
use super::stamp::{session_error, Stamp};

/// Where a node's API listens, by node id: for the not-leader hint.
pub type AddressLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A node's handle and where the other nodes' APIs listen: what the services'
/// methods run on. Clones share the handle.
pub struct Node<SM: StateMachine> {
    handle: RaftHandle<SM>,
    /// Where each node's API listens, for redirect hints.
    addresses: AddressLookup,
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
    /// The node `handle`, with the API addresses of all nodes.
    pub fn new(handle: RaftHandle<SM>, addresses: BTreeMap<String, String>) -> Self {
        Node::with_lookup(handle, Arc::new(move |id: &str| addresses.get(id).cloned()))
    }

    /// The node `handle`, with a live lookup of the nodes' API addresses (a
    /// membership that changes, a replicated directory).
    pub fn with_lookup(handle: RaftHandle<SM>, addresses: AddressLookup) -> Self {
        Node { handle, addresses }
    }

    /// The node's handle.
    pub fn handle(&self) -> &RaftHandle<SM> {
        &self.handle
    }

    /// Maps a runtime error to a JSON-RPC error (with a redirect hint for NotLeader).
    pub fn error(&self, e: Error) -> ErrorObjectOwned {
        match &e {
            Error::NotLeader { leader_hint } => {
                let leader = leader_hint.as_ref().map(|l| l.to_string());
                let address = leader.as_deref().and_then(|l| (self.addresses)(l));
                ErrorObject::owned(
                    NOT_LEADER,
                    "not the leader; retry on the leader",
                    Some(json!({ "leader": leader, "address": address })),
                )
            }
            Error::ProposalDropped | Error::TransferInProgress(_) => {
                ErrorObject::owned(NOT_APPLIED, e.to_string(), None::<()>)
            }
            Error::Backpressure { .. } => ErrorObject::owned(BACKPRESSURE, e.to_string(), None::<()>),
            Error::Encoding(_) | Error::Membership(_) => ErrorObject::owned(BAD_REQUEST, e.to_string(), None::<()>),
            // A read changes nothing: always safe to retry.
            Error::ReadTimeout(_) => ErrorObject::owned(UNAVAILABLE, e.to_string(), None::<()>),
            // Timeout, Stopped, storage, transport...: a write may have been proposed
            // (and may yet commit), so nothing more definite can be said.
            _ => ErrorObject::owned(UNKNOWN_OUTCOME, e.to_string(), None::<()>),
        }
    }

    /// Maps the error of a read to a JSON-RPC error. A read changes nothing, so its
    /// outcome is never unknown: anything but a redirect or a bad request is
    /// [`UNAVAILABLE`] (retry, here or elsewhere), never [`UNKNOWN_OUTCOME`].
    pub fn read_error(&self, e: Error) -> ErrorObjectOwned {
        match &e {
            Error::NotLeader { .. } | Error::Encoding(_) => self.error(e),
            _ => ErrorObject::owned(UNAVAILABLE, e.to_string(), None::<()>),
        }
    }
}

impl<M: StateMachine> Node<M> {
    /// Proposes a command of service `S` and waits for its response, errors mapped
    /// with [`Node::error`]. With a `session` in the request's `params` ([`Stamp`]),
    /// the command runs in that client session: applied once however often it is
    /// sent, each time answered as the first.
    pub async fn propose<S: StateMachine>(
        &self,
        params: &serde_json::Value,
        command: S::Command,
    ) -> Result<S::Response, ErrorObjectOwned>
    where
        M: Hosts<S>,
    {
        let Some(stamp) = Stamp::of(params)? else {
            let r = self
                .handle
                .propose(<M as Hosts<S>>::wrap_command(command))
                .await
                .map_err(|e| self.error(e))?;
            return <M as Hosts<S>>::unwrap_response(r).ok_or_else(mismatch);
        };
        let Some(command) = <M as Hosts<S>>::wrap_in_session(command, stamp, now_ms()) else {
            return Err(bad("this node keeps no client sessions: drop `session`"));
        };
        let r = self.handle.propose(command).await.map_err(|e| self.error(e))?;
        match <M as Hosts<S>>::unwrap_in_session(r) {
            Some(SessionResponse::Applied(r)) => Ok(r),
            Some(SessionResponse::Refused(e)) => Err(session_error(e)),
            _ => Err(mismatch()),
        }
    }

    /// Runs a query of service `S`: linearizable, or from this node's state at once
    /// when `stale` ([`RaftHandle::read_local`]); errors mapped with
    /// [`Node::read_error`].
    pub async fn query<S: StateMachine>(
        &self,
        query: S::Query,
        stale: bool,
    ) -> Result<S::QueryResponse, ErrorObjectOwned>
    where
        M: Hosts<S>,
    {
        let h = &self.handle;
        let q = <M as Hosts<S>>::wrap_query(query);
        let answer = if stale { h.read_local(q).await } else { h.read(q).await };
        <M as Hosts<S>>::unwrap_answer(answer.map_err(|e| self.read_error(e))?).ok_or_else(mismatch)
    }
}

/// A combined machine answered with another service's response: a bug.
fn mismatch() -> ErrorObjectOwned {
    ErrorObject::owned(
        jsonrpsee::types::error::INTERNAL_ERROR_CODE,
        "the state machine answered for another service",
        None::<()>,
    )
}

/// Milliseconds since the Unix epoch on this node's clock. Only the leader reads it,
/// to stamp commands; replicas use the stamped value.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvStore;
    use easyraft::{MemCluster, MemClusterExt, RaftConfig};

    /// A one-node cluster on the in-memory network, and its node with `addresses`.
    async fn node(addresses: BTreeMap<String, String>) -> (MemCluster<KvStore>, Node<KvStore>) {
        let cluster = MemCluster::start_in_memory(["node1"], RaftConfig::fast(), |_| KvStore::default())
            .await
            .unwrap();
        let handle = cluster.nodes().next().unwrap().clone();
        (cluster, Node::new(handle, addresses))
    }

    #[tokio::test]
    async fn errors_say_whether_a_write_may_have_happened() {
        let (mut cluster, node) = node([("node2".to_string(), "127.0.0.1:5002".to_string())].into()).await;
        let code = |e: Error| node.error(e).code();
        let hint = node.error(Error::NotLeader {
            leader_hint: Some("node2".into()),
        });
        assert_eq!(hint.code(), NOT_LEADER);
        assert_eq!(
            hint.data().map(|d| d.get()),
            Some(r#"{"address":"127.0.0.1:5002","leader":"node2"}"#)
        );
        // Definitely not applied: safe to retry.
        assert_eq!(code(Error::ProposalDropped), NOT_APPLIED);
        assert_eq!(code(Error::TransferInProgress("node2".into())), NOT_APPLIED);
        // May have been proposed, and may still commit.
        assert_eq!(code(Error::Timeout(std::time::Duration::from_secs(1))), UNKNOWN_OUTCOME);
        assert_eq!(code(Error::Stopped), UNKNOWN_OUTCOME);
        assert_eq!(code(Error::Internal("x".into())), UNKNOWN_OUTCOME);
        // Never proposed.
        assert_eq!(code(Error::Encoding("x".into())), BAD_REQUEST);
        // Nothing was proposed: retry after a backoff.
        assert_eq!(
            code(Error::Backpressure {
                uncommitted: 10,
                limit: 10
            }),
            BACKPRESSURE
        );
        cluster.stop().await;
    }

    #[tokio::test]
    async fn a_read_is_never_reported_as_an_unknown_outcome() {
        let (mut cluster, node) = node(Default::default()).await;
        let read = |e: Error| node.read_error(e).code();
        for e in [
            Error::Timeout(std::time::Duration::from_secs(1)),
            Error::ReadTimeout(std::time::Duration::from_secs(1)),
            Error::Stopped,
            Error::Internal("x".into()),
            Error::ProposalDropped,
        ] {
            let shown = e.to_string();
            assert_eq!(read(e), UNAVAILABLE, "{shown}");
        }
        assert_eq!(read(Error::NotLeader { leader_hint: None }), NOT_LEADER);
        assert_eq!(read(Error::Encoding("x".into())), BAD_REQUEST);
        cluster.stop().await;
    }
}
