//! The client side: one WebSocket JSON-RPC connection per peer, resolved through
//! discovery on every (re)connect, paced by the shared backoff; a batch of messages
//! travels as one JSON-RPC batch, and up to `max_in_flight` batches per peer are on
//! the wire at once, written in order and numbered (`"seq"`) so that the peer's
//! server hands them to its node in that order.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use jsonrpsee::core::client::{BatchResponse, ClientT, Error as ClientError};
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use raft_cluster::{Backoff, TransportError};
use raft_core::{Message, MessageBody, NodeId};
use raft_wire::{HEADER_CLUSTER, HEADER_NODE};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tracing::{debug, info};

use crate::config::JsonRpcConfig;
use crate::server::method_name;
use crate::Inner;

/// A message's params: the shared JSON payload plus its target and its place in the
/// connection's sequence.
struct Payload(Map<String, Value>);

impl Payload {
    fn numbered(mut self, seq: u64) -> Payload {
        self.0.insert("seq".into(), Value::from(seq));
        self
    }
}

impl ToRpcParams for Payload {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

/// The method and params of `m`; `None` for a message no method carries.
fn params(m: &Message) -> Option<(&'static str, Payload)> {
    let method = method_name(m.body.kind())?;
    let mut p = raft_wire::to_payload(m);
    p.insert("to".into(), Value::String(m.to.to_string()));
    Some((method, Payload(p)))
}

/// One peer: its connection, and the slots of batches in flight to it.
pub(crate) struct Peer {
    conn: Arc<tokio::sync::Mutex<Conn>>,
    slots: Arc<Semaphore>,
}

/// The connection to one peer, held only while connecting and writing (never across
/// a round trip).
struct Conn {
    client: Option<Arc<WsClient>>,
    backoff: Backoff,
    /// The next call's number on this connection (the server delivers in this order).
    next_seq: u64,
    /// Why a batch in flight failed after its `send` had returned: the next `send`
    /// reports it, so the node still learns that the peer went away.
    lost: Option<String>,
}

/// A call written to the connection whose answer is still to come.
type InFlight = Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send>>;

impl Peer {
    pub(crate) fn new(cfg: &JsonRpcConfig) -> Self {
        Peer {
            conn: Arc::new(tokio::sync::Mutex::new(Conn {
                client: None,
                backoff: Backoff::new(cfg.backoff_initial, cfg.backoff_max),
                next_seq: 0,
                lost: None,
            })),
            slots: Arc::new(Semaphore::new(cfg.max_in_flight.max(1) as usize)),
        }
    }

    /// Writes `messages` to the peer, in order after everything sent before, and
    /// returns once they are on the connection (or, for a snapshot chunk, answered).
    pub(crate) async fn send(&self, inner: &Inner, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        // A slot first, so that a full window never holds the connection's lock.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Closed)?;
        let mut conn = self.conn.lock().await;
        if let Some(reason) = conn.lost.take() {
            return Err(TransportError::Unreachable {
                peer: to.clone(),
                reason,
            });
        }
        let client = conn.connected(inner, to).await?;
        let mut in_flight = Vec::new();
        for chunk in messages.chunks(inner.cfg.max_batch.max(1) as usize) {
            let Some(mut call) = conn.call(&client, chunk, to)? else {
                continue;
            };
            // The first poll hands the call to the client's background task, which
            // writes calls in the order it gets them: polling here, under the lock,
            // keeps the wire order the order of `send`s.
            match poll_once(&mut call).await {
                Some(result) => conn.settle(&client, to, result)?,
                None => in_flight.push(call),
            }
        }
        drop(conn);
        let snapshot = messages
            .iter()
            .any(|m| matches!(m.body, MessageBody::InstallSnapshot(_)));
        if snapshot {
            for call in in_flight {
                let result = call.await;
                self.conn.lock().await.settle(&client, to, result)?;
            }
            return Ok(());
        }
        let conn = self.conn.clone();
        let to = to.clone();
        tokio::spawn(async move {
            for call in in_flight {
                let result = call.await;
                if result.is_ok() {
                    continue;
                }
                let mut conn = conn.lock().await;
                // Only a failure of the current connection is news for the next send.
                let current = conn.client.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client));
                if let Err(TransportError::Unreachable { reason, .. }) = conn.settle(&client, &to, result) {
                    if current {
                        conn.lost.get_or_insert(reason);
                    }
                }
            }
            drop(slot);
        });
        Ok(())
    }
}

impl Conn {
    /// The live connection, (re)connecting if the backoff allows.
    async fn connected(&mut self, inner: &Inner, to: &NodeId) -> Result<Arc<WsClient>, TransportError> {
        if self.client.as_ref().is_some_and(|c| !c.is_connected()) {
            debug!(peer = %to, "connection lost; reconnecting");
            self.client = None;
        }
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        if !self.backoff.ready() {
            return Err(TransportError::Unreachable {
                peer: to.clone(),
                reason: format!("backing off after {} failed attempts", self.backoff.failures()),
            });
        }
        match connect(inner, to).await {
            Ok(c) => {
                if self.backoff.failures() > 0 {
                    info!(local = %inner.me, peer = %to, "reconnected");
                }
                self.backoff.succeeded();
                let c = Arc::new(c);
                self.client = Some(c.clone());
                self.next_seq = 0;
                self.lost = None;
                Ok(c)
            }
            Err(e) => {
                self.backoff.failed();
                Err(e)
            }
        }
    }

    /// One JSON-RPC call (a single message) or batch (several) for `chunk`, its
    /// calls numbered in this connection's sequence; `None` if no message of it has a
    /// method.
    fn call(
        &mut self,
        client: &Arc<WsClient>,
        chunk: &[Message],
        to: &NodeId,
    ) -> Result<Option<InFlight>, TransportError> {
        let mut calls: Vec<_> = chunk.iter().filter_map(params).collect();
        if calls.is_empty() {
            return Ok(None);
        }
        let count = calls.len() as u64;
        let client = client.clone();
        let peer = to.clone();
        let call: InFlight = if calls.len() == 1 {
            let Some((method, p)) = calls.pop() else {
                return Err(TransportError::Closed);
            };
            let p = p.numbered(self.next_seq);
            Box::pin(async move { client.request::<Value, _>(method, p).await.map(|_| ()) })
        } else {
            let mut batch = BatchRequestBuilder::new();
            for (i, (method, p)) in calls.into_iter().enumerate() {
                batch
                    .insert(method, p.numbered(self.next_seq.saturating_add(i as u64)))
                    .map_err(|e| TransportError::Other(Box::new(e)))?;
            }
            Box::pin(async move {
                client
                    .batch_request::<Value>(batch)
                    .await
                    .map(|r: BatchResponse<'_, Value>| {
                        if r.num_failed_calls() > 0 {
                            debug!(peer = %peer, failed = r.num_failed_calls(), "peer refused some messages");
                        }
                    })
            })
        };
        self.next_seq = self.next_seq.saturating_add(count);
        Ok(Some(call))
    }

    /// What a call's answer means for the connection: a refusal is logged (the peer
    /// is up), anything else drops the connection (once, if several calls fail on it)
    /// and is the caller's error.
    fn settle(
        &mut self,
        client: &Arc<WsClient>,
        to: &NodeId,
        result: Result<(), ClientError>,
    ) -> Result<(), TransportError> {
        match result {
            Ok(()) => Ok(()),
            // The peer answered with a JSON-RPC error: it is up, the message
            // was refused (logged there); Raft will retry what matters.
            Err(ClientError::Call(err)) => {
                debug!(peer = %to, error = %err, "peer refused a message");
                Ok(())
            }
            Err(other) => {
                if self.client.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
                    self.client = None;
                    self.backoff.failed();
                }
                Err(TransportError::Unreachable {
                    peer: to.clone(),
                    reason: other.to_string(),
                })
            }
        }
    }
}

/// Polls `f` once: its output if it finished, `None` if it waits.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *f).poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

async fn connect(inner: &Inner, to: &NodeId) -> Result<WsClient, TransportError> {
    let unreachable = |reason: String| TransportError::Unreachable {
        peer: to.clone(),
        reason,
    };
    let addr = inner
        .discovery
        .get_node_address(to)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut headers = HeaderMap::new();
    let value = |s: &str| HeaderValue::from_str(s).map_err(|e| unreachable(e.to_string()));
    headers.insert(HEADER_NODE, value(inner.me.as_str())?);
    headers.insert(HEADER_CLUSTER, value(&inner.cfg.cluster_id)?);
    if let Some(t) = &inner.cfg.token {
        headers.insert("authorization", value(&format!("Bearer {t}"))?);
    }
    WsClientBuilder::default()
        .set_headers(headers)
        .max_request_size(inner.cfg.max_message_bytes)
        .max_response_size(inner.cfg.max_message_bytes)
        .request_timeout(inner.cfg.request_timeout)
        .connection_timeout(inner.cfg.connect_timeout)
        .build(format!("ws://{addr}"))
        .await
        .map_err(|e| unreachable(format!("{addr}: {e}")))
}
