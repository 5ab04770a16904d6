//! The server side: a jsonrpsee server (HTTP and WebSocket on one port) with one
//! method per Raft message; each call is checked before anything reaches the core.

use std::net::SocketAddr;

use jsonrpsee::server::{
    BatchRequestConfig, ConnectionId, HttpBody, HttpRequest, HttpResponse, RpcModule, Server, ServerConfig,
    ServerHandle,
};
use jsonrpsee::types::error::INVALID_PARAMS_CODE;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::Extensions;
use raft_cluster::{Inbox, InboxError, TransportError};
use raft_core::{Message, NodeId};
use raft_wire::{HEADER_CLUSTER, HEADER_NODE};
use serde_json::{json, Map, Value};
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};

use crate::order::Sequencer;
use crate::Inner;

/// The JSON-RPC method for each Raft message type: `raft_` + the type in lower camel
/// case.
pub const METHODS: [(&str, &str); 12] = [
    ("RequestVote", "raft_requestVote"),
    ("RequestVoteResponse", "raft_requestVoteResponse"),
    ("AppendEntries", "raft_appendEntries"),
    ("AppendEntriesResponse", "raft_appendEntriesResponse"),
    ("Heartbeat", "raft_heartbeat"),
    ("HeartbeatResponse", "raft_heartbeatResponse"),
    ("InstallSnapshot", "raft_installSnapshot"),
    ("InstallSnapshotResponse", "raft_installSnapshotResponse"),
    ("TimeoutNow", "raft_timeoutNow"),
    ("ReadIndex", "raft_readIndex"),
    ("ReadIndexResponse", "raft_readIndexResponse"),
    ("Quiesce", "raft_quiesce"),
];

/// The method that carries messages of type `kind`.
pub fn method_name(kind: &str) -> Option<&'static str> {
    METHODS.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m)
}

/// Application error codes (the standard JSON-RPC codes are used for malformed calls:
/// -32700 parse error, -32600 invalid request, -32601 method not found, -32602
/// invalid params).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The message is addressed to another node.
    WrongTarget = -32010,
    /// The message claims another sender than the connection's `x-easyraft-node`.
    WrongSender = -32011,
    /// The caller belongs to another cluster (`x-easyraft-cluster`).
    WrongCluster = -32012,
    /// The node is overloaded and dropped the message.
    Overloaded = -32013,
    /// The node has stopped.
    NodeStopped = -32014,
    /// The node runs no Raft group with the message's group id.
    UnknownGroup = -32015,
}

/// Who is calling, from the HTTP request or WebSocket handshake headers.
#[derive(Clone, Debug, Default)]
struct Caller {
    node: Option<NodeId>,
    cluster: Option<String>,
}

fn tag_caller(mut req: HttpRequest) -> HttpRequest {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let caller = Caller {
        node: header(HEADER_NODE).map(NodeId::from),
        cluster: header(HEADER_CLUSTER),
    };
    req.extensions_mut().insert(caller);
    req
}

/// Refuses HTTP requests and WebSocket handshakes without the cluster token (401).
#[derive(Clone)]
struct TokenCheck {
    expected: jsonrpsee::http_client::HeaderValue,
}

impl<B> ValidateRequest<B> for TokenCheck {
    type ResponseBody = HttpBody;

    fn validate(&mut self, req: &mut http::Request<B>) -> Result<(), HttpResponse<HttpBody>> {
        if req.headers().get("authorization") == Some(&self.expected) {
            return Ok(());
        }
        raft_cluster::warn_limited!(uri = %req.uri(), "refusing a call without the cluster token");
        let mut resp = HttpResponse::new(HttpBody::from("missing or wrong cluster token"));
        *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
        Err(resp)
    }
}

struct Ctx {
    me: NodeId,
    cluster: String,
    inbox: Inbox,
    order: Sequencer,
}

fn error(code: ErrorCode, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(code as i32, message, None::<()>)
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(INVALID_PARAMS_CODE, message, None::<()>)
}

fn inbox_error(e: InboxError) -> ErrorObjectOwned {
    match e {
        InboxError::Closed => error(ErrorCode::NodeStopped, "node stopped"),
        e @ InboxError::UnknownGroup { .. } => error(ErrorCode::UnknownGroup, e.to_string()),
        e => error(ErrorCode::Overloaded, e.to_string()),
    }
}

fn handle(kind: &'static str, params: Params<'_>, ctx: &Ctx, ext: &Extensions) -> Result<Value, ErrorObjectOwned> {
    let mut payload: Map<String, Value> = params
        .parse()
        .map_err(|e| invalid_params(format!("params must be an object: {e}")))?;
    let seq = match payload.remove("seq") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| invalid_params("seq must be a non-negative integer"))?,
        ),
    };
    let checked = check(kind, payload, ctx, ext);
    let conn = ext.get::<ConnectionId>().map(|c| c.0);
    let (Some(seq), Some(conn)) = (seq, conn) else {
        // An unnumbered call (a plain JSON-RPC client): delivered as it comes.
        return ctx.inbox.deliver(checked?).map(|()| accepted()).map_err(inbox_error);
    };
    let (message, refused) = match checked {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e)),
    };
    // The sequencer delivers this call once the ones before it have arrived (see
    // `order`: jsonrpsee may run a connection's batches in any order). The answer
    // reports what was delivered now: this call and any that waited for it.
    let mut outcome = Ok(());
    ctx.order.submit(conn, seq, message, |m| {
        if let Err(e) = ctx.inbox.deliver(m) {
            raft_cluster::warn_limited!(local = %ctx.me, error = %e, "dropping a message");
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    });
    match refused {
        Some(e) => Err(e),
        None => outcome.map(|()| accepted()).map_err(inbox_error),
    }
}

fn accepted() -> Value {
    json!({ "accepted": true })
}

/// Every check a call passes before its message may reach the core.
fn check(
    kind: &'static str,
    mut payload: Map<String, Value>,
    ctx: &Ctx,
    ext: &Extensions,
) -> Result<Message, ErrorObjectOwned> {
    let caller = ext.get::<Caller>().cloned().unwrap_or_default();
    if caller.cluster.as_deref().is_some_and(|c| c != ctx.cluster) {
        return Err(error(ErrorCode::WrongCluster, "caller belongs to another cluster"));
    }
    match payload.remove("to") {
        None | Some(Value::Null) => {}
        Some(Value::String(to)) if to == ctx.me.as_str() => {}
        Some(other) => {
            raft_cluster::warn_limited!(local = %ctx.me, target = %other, "refusing a message for another node");
            return Err(error(
                ErrorCode::WrongTarget,
                format!("this is {}, not {other}", ctx.me),
            ));
        }
    }
    let m = raft_wire::from_payload(kind, ctx.me.clone(), payload).map_err(|e| invalid_params(e.to_string()))?;
    if let Some(node) = &caller.node {
        if &m.from != node {
            return Err(error(
                ErrorCode::WrongSender,
                format!("connection is from {node}, message from {}", m.from),
            ));
        }
    }
    Ok(m)
}

pub(crate) async fn start(inner: &Inner, inbox: Inbox) -> Result<(ServerHandle, SocketAddr), TransportError> {
    let other = |e: String| TransportError::Other(e.into());
    let mut module = RpcModule::new(Ctx {
        me: inner.me.clone(),
        cluster: inner.cfg.cluster_id.clone(),
        inbox,
        order: Sequencer::default(),
    });
    for (kind, method) in METHODS {
        module
            .register_method(method, move |params, ctx, ext| handle(kind, params, ctx, ext))
            .map_err(|e| other(e.to_string()))?;
    }
    let auth = match &inner.cfg.token {
        Some(t) => {
            let expected = jsonrpsee::http_client::HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| other("the cluster token is not a valid header value".into()))?;
            Some(ValidateRequestHeaderLayer::custom(TokenCheck { expected }))
        }
        None => None,
    };
    let http = tower::ServiceBuilder::new()
        .option_layer(auth)
        .layer(crate::envelope::EnvelopeLayer {
            max_body: inner.cfg.max_message_bytes as usize,
        })
        .map_request(tag_caller);
    let listen = inner.cfg.listen;
    let config = ServerConfig::builder()
        .max_request_body_size(inner.cfg.max_message_bytes)
        .max_response_body_size(inner.cfg.max_message_bytes)
        .max_connections(inner.cfg.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(inner.cfg.max_batch))
        .build();
    let server = bind(listen, |addr| {
        Server::builder()
            .set_config(config.clone())
            .set_http_middleware(http.clone())
            .build(addr)
    })
    .await?;
    let addr = server.local_addr().map_err(|e| other(e.to_string()))?;
    Ok((server.start(module), addr))
}

/// Binds, retrying for a moment while a previous incarnation of this node (killed a
/// moment ago) still holds the port.
async fn bind<F, Fut, T>(addr: SocketAddr, build: F) -> Result<T, TransportError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match build(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(TransportError::Other(format!("cannot listen on {addr}: {e}").into())),
        }
    }
}
