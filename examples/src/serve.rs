//! The API server of a node, built on its [`RaftHandle`] (not on the transport, which
//! carries Raft traffic only, on its own port): JSON-RPC 2.0 over HTTP/1.1 (`POST /`,
//! one call or a batch) for the services' methods, and `GET /health`, `/status` and
//! `/metrics` rendered by [`easyraft::cluster::ops::respond`]; and `GET /v1/stream`,
//! the binary stream of many calls on one WebSocket connection ([`crate::stream`]).
//!
//! [`serve`] is the whole server the examples use; the building blocks below it
//! ([`serve_with`], [`rpc`], [`ops_reply`], ...) are what `easyraft-server` builds its
//! client port from, beside its own admin and backup routes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use examples::api::Node;
//! use examples::serve::{serve, Api};
//!
//! # async fn demo(handle: easyraft::RaftHandle<examples::kv::KvStore>) -> std::io::Result<()> {
//! let node = Node::new(handle.clone(), Default::default());
//! let api = Api {
//!     methods: examples::kv::rpc(node).into(),
//!     handle,
//!     token: Some("s3cret".into()),
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6001").await?;
//! // Serves until the task is dropped.
//! tokio::spawn(serve(listener, Arc::new(api)));
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use easyraft::cluster::ops;
use easyraft::{RaftHandle, StateMachine};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonrpsee::Methods;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::api::UNAUTHORIZED;

/// The largest request body accepted.
pub const MAX_BODY: usize = 8 << 20;

/// A response body: whole, or streamed.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A whole response as a [`Body`] response.
pub fn boxed(r: Response<Full<Bytes>>) -> Response<Body> {
    r.map(|b| b.map_err(|never| match never {}).boxed())
}

/// A response with `status` (500 if it is not a valid code), `content_type` and `body`.
pub fn reply(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response.
pub fn json_reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", body.to_string())
}

/// 404 for a method and path the server does not serve.
pub fn not_found(method: &Method, path: &str) -> Response<Full<Bytes>> {
    json_reply(404, json!({ "error": format!("no such endpoint: {method} {path}") }))
}

/// A JSON-RPC 2.0 error object for call `id`.
pub fn rpc_error(id: Value, code: i32, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// A 401 answer to call `id`: error [`UNAUTHORIZED`] with `message`.
pub fn unauthorized(id: Value, message: &str) -> Response<Full<Bytes>> {
    json_reply(401, rpc_error(id, UNAUTHORIZED, message))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `req` carries `Authorization: Bearer <token>` (compared in constant time).
pub fn bearer_is<B>(req: &Request<B>, token: &str) -> bool {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), token.as_bytes()))
}

/// The answer to `GET path` for one of [`ops::PATHS`] (`/health`, `/status`,
/// `/metrics`) from the node's live view and metrics; `None` for any other path.
pub fn ops_reply<SM: StateMachine>(path: &str, handle: &RaftHandle<SM>) -> Option<Response<Full<Bytes>>> {
    let view = handle.view();
    ops::respond(path, handle.id(), Some(&view), Some(handle.metrics()))
        .map(|r| reply(r.status, r.content_type, r.body))
}

/// Serves the HTTP/1.1 connections accepted on `listener`, every request answered by
/// `handler`, until the task is dropped (its connections go with it).
pub async fn serve_with<H, F>(listener: TcpListener, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_accepting(listener, |stream, _| async move { Some(stream) }, handler).await
}

/// [`serve_with`], each accepted connection first passed through `accept` (a TLS
/// handshake, say), which gives the stream to serve or `None` to drop it.
pub async fn serve_accepting<A, AF, S, H, F>(listener: TcpListener, accept: A, handler: H)
where
    A: Fn(TcpStream, SocketAddr) -> AF + Clone + Send + Sync + 'static,
    AF: Future<Output = Option<S>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut conns = tokio::task::JoinSet::new();
    // Dropped with this future: what the connections spawned (upgraded streams) ends.
    let (_alive, life) = tokio::sync::watch::channel(());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    let _ = stream.set_nodelay(true);
                    let (accept, handler) = (accept.clone(), handler.clone());
                    conns.spawn(SERVER_LIFE.scope(life.clone(), async move {
                        let Some(stream) = accept(stream, from).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let answer = handler(req);
                            async move { Ok::<_, Infallible>(answer.await) }
                        });
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await
                        {
                            debug!(%from, error = %e, "API connection ended");
                        }
                    }));
                }
                Err(e) => {
                    warn!(error = %e, "API port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

tokio::task_local! {
    /// Ends (its sender is dropped) when the [`serve_accepting`] that runs the current
    /// connection is dropped.
    static SERVER_LIFE: tokio::sync::watch::Receiver<()>;
}

/// Spawns `work` (what outlives a request, e.g. an upgraded connection) so that it
/// ends when the server whose handler calls this is dropped, like its connections;
/// outside [`serve_accepting`] it runs to its end.
pub fn spawn_bound<F>(work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let life = SERVER_LIFE.try_with(|l| l.clone()).ok();
    tokio::spawn(async move {
        match life {
            Some(mut life) => {
                tokio::select! {
                    _ = work => {}
                    // Only ever an error: the sender is dropped, never used.
                    _ = life.changed() => {}
                }
            }
            None => work.await,
        }
    });
}

/// Answers a JSON-RPC request (`POST` body: one call or a batch) with `methods`.
/// `refuse` sees every call's method and id first, for the whole request: if it
/// refuses one (its answer, e.g. [`unauthorized`]), nothing at all is called.
pub async fn rpc<F>(req: Request<Incoming>, methods: &Methods, refuse: F) -> Response<Full<Bytes>>
where
    F: Fn(&Request<()>, &str, Value) -> Option<Response<Full<Bytes>>>,
{
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return json_reply(413, rpc_error(Value::Null, -32600, &format!("request body: {e}"))),
    };
    let head = Request::from_parts(parts, ());
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_reply(200, rpc_error(Value::Null, -32700, &format!("parse error: {e}"))),
    };
    let (calls, batch) = match parsed {
        Value::Array(calls) if calls.is_empty() => {
            return json_reply(200, rpc_error(Value::Null, -32600, "empty batch"));
        }
        Value::Array(calls) => (calls, true),
        one => (vec![one], false),
    };
    for c in &calls {
        let method = c["method"].as_str().unwrap_or("");
        let id = c.get("id").cloned().unwrap_or(Value::Null);
        if let Some(refused) = refuse(&head, method, id) {
            return refused;
        }
    }
    let mut answers = Vec::with_capacity(calls.len());
    for c in calls {
        let id = c.get("id").cloned().unwrap_or(Value::Null);
        let text = c.to_string();
        match methods.raw_json_request(&text, 1).await {
            Ok((answer, _)) => answers.push(serde_json::from_str(answer.get()).unwrap_or(Value::Null)),
            Err(e) => answers.push(rpc_error(id, -32600, &format!("invalid request: {e}"))),
        }
    }
    if batch {
        json_reply(200, Value::Array(answers))
    } else {
        json_reply(200, answers.pop().unwrap_or(Value::Null))
    }
}

/// What [`serve`] serves for one node.
pub struct Api<SM: StateMachine> {
    /// The services' methods (built on a [`crate::api::Node`] of `handle`).
    pub methods: Methods,
    /// The node.
    pub handle: RaftHandle<SM>,
    /// The token every JSON-RPC call must present as `Authorization: Bearer <token>`
    /// (401 otherwise); `None` accepts anyone. `/health`, `/status` and `/metrics`
    /// need none: they tell how the node is doing, not what it stores.
    pub token: Option<String>,
}

/// Serves `api` on `listener` until the task is dropped: `POST /` (JSON-RPC), `GET
/// /v1/stream` (the binary stream, [`crate::stream`], with the same token rule: without
/// it every call on the stream is refused), `GET /health`, `/status`, `/metrics`
/// ([`ops_reply`]), 404 for anything else.
pub async fn serve<SM: StateMachine>(listener: TcpListener, api: Arc<Api<SM>>) {
    serve_with(listener, move |req| {
        let api = api.clone();
        async move { boxed(route(req, &api).await) }
    })
    .await
}

async fn route<SM: StateMachine>(req: Request<Incoming>, api: &Api<SM>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if crate::stream::is_stream(&req) {
        let allowed = api.token.as_ref().is_none_or(|t| bearer_is(&req, t));
        let refuse: crate::stream::Refuse = Arc::new(move |_: &str| {
            (!allowed).then(|| {
                (
                    i64::from(UNAUTHORIZED),
                    "unauthorized: a valid token is required".to_string(),
                )
            })
        });
        return crate::stream::upgrade(req, api.methods.clone(), refuse);
    }
    match *req.method() {
        Method::POST if path == "/" => {
            rpc(req, &api.methods, |head, _, id| match &api.token {
                Some(t) if !bearer_is(head, t) => Some(unauthorized(id, "unauthorized: a valid token is required")),
                _ => None,
            })
            .await
        }
        Method::GET => ops_reply(&path, &api.handle).unwrap_or_else(|| not_found(req.method(), &path)),
        _ => not_found(req.method(), &path),
    }
}
