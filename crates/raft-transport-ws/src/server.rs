//! The server side: one port for `ws://host:port/raft/` and nothing else (a plain
//! HTTP request gets a short 404 or 400). Every frame is checked before anything
//! reaches the core.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use raft_cluster::{Inbox, InboxError};
use raft_core::{Message, NodeId};
use raft_wire::{WireError, HEADER_CLUSTER, HEADER_NODE, HEADER_PROTOCOL, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::{debug, warn};

use crate::http::{not_found, read_head, refuse_upgrade, request_line, upgrade_problem, Prefixed};
use crate::Inner;

/// Accepts connections until the task is aborted; each connection runs in the set, so
/// aborting the server drops them all.
pub(crate) async fn serve(listener: TcpListener, inner: Arc<Inner>, inbox: Inbox) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) if conns.len() >= inner.cfg.max_connections => {
                    debug!(%addr, limit = inner.cfg.max_connections, "refusing a connection over the limit");
                    drop(stream);
                }
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let inner = inner.clone();
                    let inbox = inbox.clone();
                    conns.spawn(async move {
                        if let Err(e) = accept(stream, inner, inbox).await {
                            debug!(%addr, error = %e, "connection ended");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn accept(stream: tokio::net::TcpStream, inner: Arc<Inner>, inbox: Inbox) -> std::io::Result<()> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &inner.cfg.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        let stream = within(inner.cfg.handshake_timeout, acceptor.accept(stream)).await?;
        return route(stream, inner, inbox).await;
    }
    route(stream, inner, inbox).await
}

/// `fut`, or a `TimedOut` error after `limit`.
async fn within<T>(
    limit: std::time::Duration,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the handshake took too long"))?
}

async fn route<S>(mut stream: S, inner: Arc<Inner>, inbox: Inbox) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limit = inner.cfg.handshake_timeout;
    let head = within(limit, read_head(&mut stream)).await?;
    let Some((method, path)) = request_line(&head) else {
        return not_found(&mut stream, true).await;
    };
    // Fix (tests): only `/raft` and `/raft/` are the Raft endpoint; `/rafts` and the
    // like went to the WebSocket handshake, which closed without an answer (now 404).
    let endpoint = path.split('?').next().unwrap_or("");
    if endpoint != "/raft/" && endpoint != "/raft" {
        debug!(local = %inner.me, %path, "refusing a plain HTTP request on the Raft port");
        return not_found(&mut stream, false).await;
    }
    if let Some((status, why)) = upgrade_problem(&method, &head) {
        debug!(local = %inner.me, status, why, "refusing a request for the Raft endpoint");
        return refuse_upgrade(&mut stream, status, why).await;
    }
    let peer: Arc<Mutex<Option<NodeId>>> = Arc::default();
    let check = handshake_check(inner.clone(), peer.clone());
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        Prefixed::new(head, stream),
        check,
        Some(inner.cfg.ws_config()),
    );
    let ws = match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            debug!(error = %e, "WebSocket handshake refused or failed");
            return Ok(());
        }
        Err(_) => {
            debug!(local = %inner.me, "WebSocket handshake took too long");
            return Ok(());
        }
    };
    let peer = peer.lock().ok().and_then(|p| p.clone());
    debug!(local = %inner.me, peer = ?peer, "WebSocket connection accepted");
    connection(ws, inner, inbox, peer).await;
    Ok(())
}

/// Checks path, token, protocol version and cluster id; records the peer's node id.
// Fix (clippy 1.95 flags closures too): tungstenite's callback signature returns its
// `ErrorResponse` by value; we cannot box it.
#[allow(clippy::result_large_err)]
fn handshake_check(
    inner: Arc<Inner>,
    peer: Arc<Mutex<Option<NodeId>>>,
) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> {
    move |req: &Request, resp: Response| {
        let refuse = |code: StatusCode, why: &str| {
            raft_cluster::warn_limited!(local = %inner.me, path = %req.uri(), status = code.as_u16(), why, "refusing a WebSocket handshake");
            let mut r = ErrorResponse::new(Some(why.to_string()));
            *r.status_mut() = code;
            Err(r)
        };
        let path = req.uri().path();
        if path != "/raft/" && path != "/raft" {
            return refuse(StatusCode::NOT_FOUND, "the Raft endpoint is /raft/");
        }
        if let Some(token) = &inner.cfg.token {
            let header = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let query = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
            if header.or(query) != Some(token.as_str()) {
                return refuse(StatusCode::UNAUTHORIZED, "missing or wrong cluster token");
            }
        }
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(v) = header(HEADER_PROTOCOL) {
            if v.parse::<u32>().ok() != Some(PROTOCOL_VERSION) {
                return refuse(StatusCode::BAD_REQUEST, "unsupported protocol version");
            }
        }
        if let Some(c) = header(HEADER_CLUSTER) {
            if c != inner.cfg.cluster_id {
                return refuse(StatusCode::FORBIDDEN, "node of another cluster");
            }
        }
        if let (Some(n), Ok(mut p)) = (header(HEADER_NODE), peer.lock()) {
            *p = Some(NodeId::new(n));
        }
        Ok(resp)
    }
}

async fn connection<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    inner: Arc<Inner>,
    inbox: Inbox,
    peer: Option<NodeId>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(frame) = ws.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                use tokio_tungstenite::tungstenite::error::ProtocolError;
                use tokio_tungstenite::tungstenite::Error as WsError;
                // A peer that died or a link that dropped is routine, not bad input.
                if matches!(
                    e,
                    WsError::Io(_)
                        | WsError::ConnectionClosed
                        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
                ) {
                    debug!(local = %inner.me, peer = ?peer, error = %e, "connection dropped");
                    return;
                }
                raft_cluster::warn_limited!(local = %inner.me, peer = ?peer, error = %e, "closing a connection after a bad frame");
                let code = match e {
                    tokio_tungstenite::tungstenite::Error::Capacity(_) => CloseCode::Size,
                    // Fix (tests): a text frame that is not UTF-8 is 1007 (RFC 6455
                    // §7.4.1, "inconsistent data"), not a protocol error (1002).
                    tokio_tungstenite::tungstenite::Error::Utf8(_) => CloseCode::Invalid,
                    _ => CloseCode::Protocol,
                };
                let _ = ws.close(Some(close(code, &e.to_string()))).await;
                return;
            }
        };
        match frame {
            WsMessage::Binary(bytes) => match raft_wire::decode_binary(&bytes) {
                Ok(batch) => {
                    for m in batch {
                        match admit(&inbox, peer.as_ref(), m) {
                            Ok(()) => {}
                            Err(WireError::NodeStopped) => {
                                let _ = ws.close(Some(close(CloseCode::Away, "node stopped"))).await;
                                return;
                            }
                            Err(e) => {
                                raft_cluster::warn_limited!(local = %inner.me, peer = ?peer, error = %e, "dropping an inbound message")
                            }
                        }
                    }
                }
                Err(e) => {
                    raft_cluster::warn_limited!(local = %inner.me, peer = ?peer, error = %e, "closing a connection after an undecodable frame");
                    let _ = ws.close(Some(close(CloseCode::Invalid, &e.to_string()))).await;
                    return;
                }
            },
            WsMessage::Text(text) if text.len() > inner.cfg.max_json_bytes => {
                raft_cluster::warn_limited!(local = %inner.me, peer = ?peer, bytes = text.len(), "closing a connection after a text frame over the JSON limit");
                let why = format!(
                    "{} bytes of JSON, over the limit of {}",
                    text.len(),
                    inner.cfg.max_json_bytes
                );
                let _ = ws.close(Some(close(CloseCode::Size, &why))).await;
                return;
            }
            WsMessage::Text(text) => {
                let reply = match raft_wire::decode_envelope(text.as_str()) {
                    Ok(env) => match admit(&inbox, peer.as_ref(), env.message) {
                        Ok(()) => peer.is_none().then(|| raft_wire::ack(env.message_id.as_deref())),
                        Err(e) => {
                            raft_cluster::warn_limited!(local = %inner.me, error = %e, "refusing an envelope");
                            Some(raft_wire::error_reply(env.message_id.as_deref(), &e))
                        }
                    },
                    Err((e, id)) => {
                        raft_cluster::warn_limited!(local = %inner.me, peer = ?peer, error = %e, "refusing a malformed envelope");
                        Some(raft_wire::error_reply(id.as_deref(), &e))
                    }
                };
                if let Some(reply) = reply {
                    if ws.send(WsMessage::text(reply)).await.is_err() {
                        return;
                    }
                }
            }
            WsMessage::Close(_) => {
                // Send the close reply tungstenite queued (for a close code that is
                // not allowed, such as 999, that reply is 1002).
                let _ = ws.flush().await;
                return;
            }
            _ => {}
        }
    }
}

/// Hands a decoded message to the node if it is for this node and from the peer the
/// connection authenticated as.
fn admit(inbox: &Inbox, peer: Option<&NodeId>, m: Message) -> Result<(), WireError> {
    if &m.to != inbox.node_id() {
        return Err(WireError::WrongTarget {
            to: m.to,
            local: inbox.node_id().clone(),
        });
    }
    if let Some(p) = peer {
        if &m.from != p {
            return Err(WireError::WrongSender {
                claimed: m.from,
                peer: p.clone(),
            });
        }
    }
    inbox.deliver(m).map_err(|e| match e {
        InboxError::Closed => WireError::NodeStopped,
        InboxError::UnknownGroup { group } => WireError::UnknownGroup { group },
        _ => WireError::Overloaded,
    })
}

fn close(code: CloseCode, reason: &str) -> CloseFrame {
    let mut reason = reason.to_string();
    reason.truncate(120);
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
