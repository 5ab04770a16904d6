//! What the three services share: the node they run on ([`Node`], a handle built
//! once the node has started), the mapping of Raft errors to JSON-RPC errors, and [`Hosts`], which
//! lets a service's API run over any state machine that carries the service (the
//! service's own, or one combining several, as `easyraft-server` does).

use std::collections::BTreeMap;
use std::sync::Arc;

use easyraft::cluster::sessions::{SessionCommand, SessionError, SessionId, SessionResponse, Sessions};
use easyraft::{Error, RaftHandle, StateMachine};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde::Deserialize;
use serde_json::json;

/// The error codes the services answer with, defined once in the client crate.
pub use easyraft_client::codes::{
    BACKPRESSURE, BAD_REQUEST, NOT_APPLIED, NOT_LEADER, SESSION_EXPIRED, UNAUTHORIZED, UNAVAILABLE, UNKNOWN_OUTCOME,
};

/// Where a write stands in its client's session: the optional `session` param of
/// every write (`{"id": 17, "seq": 4, "acked": 3}`, docs/server-api.md). A write sent
/// again with the same stamp is applied once and answered as the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// The session (what `session_open` answered).
    pub id: SessionId,
    /// This write's number in the session, from 1.
    pub seq: u64,
    /// Every write of the session below this number was answered to the client.
    #[serde(default)]
    pub acked: u64,
}

impl Stamp {
    /// The `session` param of `params`: `None` when absent or `null`; a `-32602` error
    /// when malformed (`seq` 0, `acked` past `seq`).
    pub fn of(params: &serde_json::Value) -> Result<Option<Stamp>, ErrorObjectOwned> {
        let stamp = match params.get("session") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(v) => Stamp::deserialize(v)
                .map_err(|e| bad(format!("`session` must be {{\"id\", \"seq\", \"acked\"}}: {e}")))?,
        };
        if stamp.seq == 0 || stamp.acked > stamp.seq {
            return Err(bad("`session`: `seq` starts at 1 and `acked` is at most `seq`"));
        }
        Ok(Some(stamp))
    }

    /// The session command that carries `command` with this stamp, at `at_ms`.
    pub fn command<C>(self, command: C, at_ms: u64) -> SessionCommand<C> {
        SessionCommand::Apply {
            session: self.id,
            seq: self.seq,
            acked: self.acked,
            at_ms,
            command,
        }
    }
}

/// Maps a session's refusal to a JSON-RPC error (nothing was applied).
pub fn session_error(e: SessionError) -> ErrorObjectOwned {
    let code = match e {
        SessionError::UnknownSession(_) => SESSION_EXPIRED,
        SessionError::TooManySessions { .. } => BACKPRESSURE,
        SessionError::TooManyPending { .. } | SessionError::AlreadyAcknowledged { .. } => BAD_REQUEST,
    };
    ErrorObject::owned(code, e.to_string(), None::<()>)
}

/// A state machine that carries service `S`: `S` itself, or a machine combining several
/// services. The services' `rpc` functions ([`crate::kv::rpc`], ...) work over any
/// `M: Hosts<S>`, wrapping `S`'s commands and queries into `M`'s and unwrapping the
/// answers.
pub trait Hosts<S: StateMachine>: StateMachine {
    /// `S`'s command as one of this machine's.
    fn wrap_command(command: S::Command) -> Self::Command;
    /// The response to one of `S`'s commands (`None`: the answer of another service,
    /// which is a bug of the combined machine).
    fn unwrap_response(response: Self::Response) -> Option<S::Response>;
    /// `S`'s query as one of this machine's.
    fn wrap_query(query: S::Query) -> Self::Query;
    /// The answer to one of `S`'s queries (`None`: another service's answer, a bug).
    fn unwrap_answer(answer: Self::QueryResponse) -> Option<S::QueryResponse>;
    /// `S`'s command within a client session, stamped `at_ms` by the proposing node;
    /// `None` (the default): this machine keeps no sessions.
    fn wrap_in_session(command: S::Command, stamp: Stamp, at_ms: u64) -> Option<Self::Command> {
        let _ = (command, stamp, at_ms);
        None
    }
    /// The answer to a command from [`wrap_in_session`](Self::wrap_in_session)
    /// (`None`: not such an answer, a bug).
    fn unwrap_in_session(response: Self::Response) -> Option<SessionResponse<S::Response>> {
        let _ = response;
        None
    }
}

impl<S: StateMachine> Hosts<S> for S {
    fn wrap_command(command: S::Command) -> S::Command {
        command
    }
    fn unwrap_response(response: S::Response) -> Option<S::Response> {
        Some(response)
    }
    fn wrap_query(query: S::Query) -> S::Query {
        query
    }
    fn unwrap_answer(answer: S::QueryResponse) -> Option<S::QueryResponse> {
        Some(answer)
    }
}

/// A machine wrapped in client sessions carries its own service: writes with a
/// `session` param run in that session, writes without one as
/// [`SessionCommand::Direct`].
impl<S: StateMachine> Hosts<S> for Sessions<S>
where
    S::Response: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    fn wrap_command(command: S::Command) -> SessionCommand<S::Command> {
        SessionCommand::Direct(command)
    }
    fn unwrap_response(response: SessionResponse<S::Response>) -> Option<S::Response> {
        match response {
            SessionResponse::Applied(r) => Some(r),
            _ => None,
        }
    }
    fn wrap_query(query: S::Query) -> S::Query {
        query
    }
    fn unwrap_answer(answer: S::QueryResponse) -> Option<S::QueryResponse> {
        Some(answer)
    }
    fn wrap_in_session(command: S::Command, stamp: Stamp, at_ms: u64) -> Option<SessionCommand<S::Command>> {
        Some(stamp.command(command, at_ms))
    }
    fn unwrap_in_session(response: SessionResponse<S::Response>) -> Option<SessionResponse<S::Response>> {
        Some(response)
    }
}

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

/// A `-32602` error: the params make no sense for the method.
pub fn bad(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(BAD_REQUEST, msg, None::<()>)
}

/// The string param `name`, or a `-32602` error naming it.
pub fn str_param(p: &serde_json::Value, name: &str) -> Result<String, ErrorObjectOwned> {
    p.get(name)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("`{name}` must be a string")))
}

/// The optional string param `name` (absent or `null` is `None`), or a `-32602` error.
pub fn opt_str_param(p: &serde_json::Value, name: &str) -> Result<Option<String>, ErrorObjectOwned> {
    match p.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("`{name}` must be a string or null"))),
    }
}

/// The optional boolean param `name` (absent or `null` is `false`), or a `-32602` error.
pub fn flag_param(p: &serde_json::Value, name: &str) -> Result<bool, ErrorObjectOwned> {
    match p.get(name) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("`{name}` must be a boolean"))),
    }
}

/// The optional integer param `name` in `1..=max` (absent or `null` is `default`), or
/// a `-32602` error naming it and the range: `-1`, `0`, `2^64` or `1.5` are refused,
/// never clamped.
pub fn count_param(p: &serde_json::Value, name: &str, default: u64, max: u64) -> Result<u64, ErrorObjectOwned> {
    match p.get(name) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad(format!("`{name}` must be an integer from 1 to {max}"))),
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

/// The param `name` of `p`, typed; an invalid-params error naming it otherwise.
pub fn field<T: serde::de::DeserializeOwned>(p: &serde_json::Value, name: &str) -> Result<T, ErrorObjectOwned> {
    p.get(name)
        .cloned()
        .ok_or_else(|| bad(format!("`{name}` is missing")))
        .and_then(|v| serde_json::from_value(v).map_err(|e| bad(format!("`{name}`: {e}"))))
}

/// Encodes a snapshot of a serializable state.
pub fn encode<T: serde::Serialize>(state: &T) -> Result<bytes::Bytes, easyraft::BoxError> {
    Ok(postcard::to_allocvec(state)?.into())
}

/// Decodes a snapshot.
pub fn decode<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, easyraft::BoxError> {
    Ok(postcard::from_bytes(data)?)
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

    #[test]
    fn params_are_typed_or_refused_with_their_name() {
        let p = json!({"k": "v", "n": null, "t": true, "five": 5});
        assert_eq!(str_param(&p, "k").unwrap(), "v");
        assert_eq!(opt_str_param(&p, "n").unwrap(), None);
        assert_eq!(opt_str_param(&p, "absent").unwrap(), None);
        assert!(flag_param(&p, "t").unwrap());
        assert!(!flag_param(&p, "absent").unwrap());
        assert_eq!(count_param(&p, "five", 9, 10).unwrap(), 5);
        assert_eq!(count_param(&p, "absent", 9, 10).unwrap(), 9);
        let bad_counts =
            json!({"neg": -1, "zero": 0, "huge": 18446744073709551616.0, "big": 11, "half": 1.5, "s": "3"});
        for name in ["neg", "zero", "huge", "big", "half", "s"] {
            let err = count_param(&bad_counts, name, 9, 10).unwrap_err();
            assert_eq!(err.code(), BAD_REQUEST, "{name}");
            assert!(err.message().contains(&format!("`{name}`")), "{}", err.message());
        }
        for err in [
            str_param(&p, "five").unwrap_err(),
            str_param(&p, "absent").unwrap_err(),
            opt_str_param(&p, "five").unwrap_err(),
            flag_param(&p, "k").unwrap_err(),
        ] {
            assert_eq!(err.code(), BAD_REQUEST);
            assert!(err.message().contains('`'), "{}", err.message());
        }
    }
}
