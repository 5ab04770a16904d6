//! The client port: JSON-RPC 2.0 over HTTP/1.1 (`POST /`, one call or a batch), the
//! binary stream (`GET /v1/stream`, [`examples::stream`]: many calls on one WebSocket
//! connection, authorized as `POST /` is, from the upgrade request's token), and `GET
//! /health`, `/status`, `/metrics`. Built from the node's handle, not the transport.

use std::sync::Arc;

use bytes::Bytes;
use easyraft::cluster::ops;
use easyraft::cluster::warn_limited;
use easyraft::RaftHandle;
use examples::serve::{
    bearer_is, boxed, json_reply, not_found, ops_reply, rpc_error, serve_accepting, serve_with, unauthorized, Body,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use jsonrpsee::Methods;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::warn;

use crate::machine::ServerMachine;
use crate::rpc_codes::UNAUTHORIZED;

/// What the client port serves.
pub struct ClientApi {
    /// The services' and admin methods.
    pub methods: Methods,
    /// The node.
    pub handle: RaftHandle<ServerMachine>,
    /// The admin token; `None` refuses admin calls unless `admin_insecure`.
    pub admin_token: Option<String>,
    /// Serve admin calls without a token.
    pub admin_insecure: bool,
    /// The peer token, which members present to register their addresses.
    pub peer_token: Option<String>,
    /// Members' client addresses (to send a backup request to the leader).
    pub directory: crate::directory::Directory,
    /// The client ports serve HTTPS (`[client_tls]`): redirects say `https://`.
    pub https: bool,
}

/// Serves `api` on `listener` until the task is dropped; over TLS with `tls`.
pub async fn serve(listener: TcpListener, api: Arc<ClientApi>, tls: Option<TlsAcceptor>) {
    let handler = move |req: Request<Incoming>| {
        let api = api.clone();
        async move {
            if req.method() == Method::GET && req.uri().path() == "/admin/snapshot" {
                let (parts, _) = req.into_parts();
                return backup(&Request::from_parts(parts, ()), &api).await;
            }
            if examples::stream::is_stream(&req) {
                return boxed(stream(req, api));
            }
            boxed(route(req, &api).await)
        }
    };
    let Some(acceptor) = tls else {
        return serve_with(listener, handler).await;
    };
    let handshake = move |stream, from: std::net::SocketAddr| {
        let acceptor = acceptor.clone();
        async move {
            match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(e)) => {
                    warn_limited!(%from, error = %e, "client port: TLS handshake failed");
                    None
                }
                Err(_) => {
                    warn_limited!(%from, "client port: no TLS handshake within {TLS_HANDSHAKE:?}");
                    None
                }
            }
        }
    };
    serve_accepting(listener, handshake, handler).await
}

/// How long a client may take to complete its TLS handshake.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

async fn route(req: Request<Incoming>, api: &ClientApi) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::POST, "/") => {
            // Authorization first, for the whole request: a batch with one admin call
            // and a wrong token does nothing at all.
            examples::serve::rpc(req, &api.methods, |head, method, id| {
                (!authorized_head(head, api, method))
                    .then(|| unauthorized(id, "unauthorized: a valid admin token is required"))
            })
            .await
        }
        (&Method::GET, "/health") => health(api),
        (&Method::GET, "/status") => status(api).await,
        (&Method::GET, "/metrics") => {
            ops_reply("/metrics", &api.handle).unwrap_or_else(|| json_reply(404, json!({"error": "not found"})))
        }
        _ => not_found(req.method(), &path),
    }
}

/// `GET /v1/stream`: every call on it is authorized by [`authorized_head`] on the
/// upgrade request's headers, as each `POST /` request is.
fn stream(req: Request<Incoming>, api: Arc<ClientApi>) -> Response<Full<Bytes>> {
    let mut head = Request::new(());
    *head.headers_mut() = req.headers().clone();
    let methods = api.methods.clone();
    let refuse: examples::stream::Refuse = Arc::new(move |method: &str| {
        (!authorized_head(&head, &api, method)).then(|| {
            (
                i64::from(UNAUTHORIZED),
                "unauthorized: a valid admin token is required".to_string(),
            )
        })
    });
    examples::stream::upgrade(req, methods, refuse)
}

/// 200 when the node runs and knows a leader, else 503.
fn health(api: &ClientApi) -> Response<Full<Bytes>> {
    let view = api.handle.view();
    let base = ops::respond("/health", api.handle.id(), Some(&view), None);
    let mut body: Value = base
        .as_ref()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or_else(|| json!({}));
    let healthy = base.is_some_and(|r| r.status == 200);
    let leader = view.leader.as_ref().map(|l| l.to_string());
    let ok = healthy && leader.is_some();
    body["ok"] = json!(ok);
    body["leader"] = json!(leader);
    body["role"] = json!(view.role.to_string());
    if healthy && !ok {
        body["status"] = json!("no-leader");
    }
    json_reply(if ok { 200 } else { 503 }, body)
}

async fn status(api: &ClientApi) -> Response<Full<Bytes>> {
    let view = api.handle.view();
    let m = api.handle.metrics();
    let metrics = json!({
        "proposals": m.proposals, "applied": m.applied, "persists": m.persists,
        "entries_persisted": m.entries_persisted, "elections_won": m.elections_won,
        "snapshots_taken": m.snapshots_taken, "snapshots_installed": m.snapshots_installed,
        "messages_sent": m.messages_sent, "outbound_dropped": m.outbound_dropped,
    });
    match api.handle.status().await {
        Ok(s) => json_reply(
            200,
            json!({
                "id": s.id.as_str(),
                "role": s.role.to_string(),
                "term": s.term,
                "leader": s.leader.as_ref().map(|l| l.as_str()),
                "commit": s.commit,
                "applied": s.applied,
                "first_index": s.first_index,
                "last_index": s.last_index,
                "running": view.running,
                "disk_stalled": view.disk_stalled,
                "membership": {
                    "voters": s.membership.voters.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                    "voters_outgoing": s.membership.voters_outgoing.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                    "learners": s.membership.learners.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                },
                "metrics": metrics,
            }),
        ),
        Err(e) => json_reply(
            503,
            json!({ "id": api.handle.id().as_str(), "running": false, "error": e.to_string() }),
        ),
    }
}

/// Sends what a blocking writer writes as body chunks.
struct ChunkWriter(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /admin/snapshot`: a backup taken now on the leader (`snapshot_now`, then the
/// snapshot streamed as a backup file, `raft_storage::backup`), with its index and term
/// in `X-Easyraft-Snapshot-Index`/`-Term`. A follower answers 307 to the leader's
/// client address. A failure half-way aborts the body, so a client never mistakes a
/// cut backup for a whole one (and the file checks itself).
async fn backup(head: &Request<()>, api: &ClientApi) -> Response<Body> {
    if !authorized_head(head, api, "admin_snapshot") {
        return boxed(json_reply(
            401,
            rpc_error(
                Value::Null,
                UNAUTHORIZED,
                "unauthorized: a valid admin token is required",
            ),
        ));
    }
    let view = api.handle.view();
    if view.role != easyraft::Role::Leader {
        let address = view.leader.as_ref().and_then(|l| api.directory.client(l.as_str()));
        return boxed(match address {
            Some(a) => {
                let mut r = json_reply(
                    307,
                    json!({ "leader": view.leader.map(|l| l.to_string()), "address": a }),
                );
                if let Ok(v) = hyper::header::HeaderValue::from_str(&format!(
                    "{}://{a}/admin/snapshot",
                    if api.https { "https" } else { "http" }
                )) {
                    r.headers_mut().insert(hyper::header::LOCATION, v);
                }
                r
            }
            None => json_reply(503, json!({ "error": "no leader known; retry" })),
        });
    }
    let meta = match api.handle.snapshot_now().await {
        Ok(m) => m,
        Err(e) => return boxed(json_reply(503, json!({ "error": format!("no snapshot taken: {e}") }))),
    };
    let (info, mut data) = match api.handle.open_snapshot().await {
        Ok(s) => s,
        Err(e) => {
            return boxed(json_reply(
                503,
                json!({ "error": format!("cannot read the snapshot: {e}") }),
            ))
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(256 << 10, ChunkWriter(tx.clone()));
        let done = easyraft::storage::backup::write_backup(&info.meta, info.len, &mut data, &mut out)
            .map_err(std::io::Error::other)
            .and_then(|_| std::io::Write::flush(&mut out));
        if let Err(e) = done {
            warn!(error = %e, "a backup download failed half-way");
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(|r| r.map(hyper::body::Frame::data))));
    let mut r = Response::new(http_body_util::StreamBody::new(stream).boxed());
    let headers = r.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    for (name, value) in [
        ("x-easyraft-snapshot-index", meta.index),
        ("x-easyraft-snapshot-term", meta.term),
    ] {
        headers.insert(name, hyper::header::HeaderValue::from(value));
    }
    r
}

/// Whether the request may call `method`: admin methods need the admin token,
/// `directory_register` the admin or the peer token.
fn authorized_head(req: &Request<()>, api: &ClientApi, method: &str) -> bool {
    let bearer = |token: &str| bearer_is(req, token);
    let admin = match &api.admin_token {
        Some(t) => bearer(t),
        None => api.admin_insecure,
    };
    if method == "directory_register" {
        return admin || api.peer_token.as_ref().is_none_or(|t| bearer(t));
    }
    !method.starts_with("admin_") || admin
}
