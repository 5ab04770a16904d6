//! The client side: one WebSocket JSON-RPC connection per peer, resolved through
//! discovery on every (re)connect, paced by the shared backoff; a batch of messages
//! travels as one JSON-RPC batch.

use jsonrpsee::core::client::{BatchResponse, ClientT};
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use raft_cluster::{wire_json, Backoff, TransportError};
use raft_core::{Message, NodeId};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tracing::{debug, info};

use crate::config::JsonRpcConfig;
use crate::server::method_name;
use crate::Inner;

/// A message's params: the shared JSON payload plus its target.
struct Payload(Map<String, Value>);

impl ToRpcParams for Payload {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

fn params(m: &Message) -> (Option<&'static str>, Payload) {
    let mut p = wire_json::to_payload(m);
    p.insert("to".into(), Value::String(m.to.to_string()));
    (method_name(m.body.kind()), Payload(p))
}

pub(crate) struct Peer {
    client: Option<WsClient>,
    backoff: Backoff,
}

impl Peer {
    pub(crate) fn new(cfg: &JsonRpcConfig) -> Self {
        Peer {
            client: None,
            backoff: Backoff::new(cfg.backoff_initial, cfg.backoff_max),
        }
    }

    pub(crate) async fn send(
        &mut self,
        inner: &Inner,
        to: &NodeId,
        messages: Vec<Message>,
    ) -> Result<(), TransportError> {
        if self.client.as_ref().is_some_and(|c| !c.is_connected()) {
            debug!(peer = %to, "connection lost; reconnecting");
            self.client = None;
        }
        if self.client.is_none() {
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
                    self.client = Some(c);
                }
                Err(e) => {
                    self.backoff.failed();
                    return Err(e);
                }
            }
        }
        let Some(client) = &self.client else {
            return Err(TransportError::Closed);
        };
        for chunk in messages.chunks(inner.cfg.max_batch.max(1) as usize) {
            let result = if let [m] = chunk {
                let (Some(method), p) = params(m) else { continue };
                client.request::<Value, _>(method, p).await.map(|_| ())
            } else {
                let mut batch = BatchRequestBuilder::new();
                for m in chunk {
                    if let (Some(method), p) = params(m) {
                        batch
                            .insert(method, p)
                            .map_err(|e| TransportError::Other(Box::new(e)))?;
                    }
                }
                client
                    .batch_request::<Value>(batch)
                    .await
                    .map(|r: BatchResponse<'_, Value>| {
                        if r.num_failed_calls() > 0 {
                            debug!(peer = %to, failed = r.num_failed_calls(), "peer refused some messages");
                        }
                    })
            };
            if let Err(e) = result {
                use jsonrpsee::core::client::Error as E;
                match e {
                    // The peer answered with a JSON-RPC error: it is up, the message
                    // was refused (logged there); Raft will retry what matters.
                    E::Call(err) => debug!(peer = %to, error = %err, "peer refused a message"),
                    other => {
                        self.client = None;
                        self.backoff.failed();
                        return Err(TransportError::Unreachable {
                            peer: to.clone(),
                            reason: other.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
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
    headers.insert("x-easyraft-node", value(inner.me.as_str())?);
    headers.insert("x-easyraft-cluster", value(&inner.cfg.cluster_id)?);
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
