//! The client side: one outbound connection per peer, resolved through discovery on
//! every (re)connect, with exponential backoff and jitter after failures, a send
//! timeout, and ping keep-alive.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use raft_cluster::{Backoff, TransportError};
use raft_core::{Message, NodeId};
use raft_wire::{HEADER_CLUSTER, HEADER_NODE, HEADER_PROTOCOL, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info};

use crate::config::Encoding;
use crate::Inner;

/// Any byte stream (plain TCP or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Sink = SplitSink<WebSocketStream<Box<dyn Io>>, WsMessage>;

struct Conn {
    sink: Sink,
    alive: Arc<AtomicBool>,
    /// Milliseconds since `epoch` of the last pong (or of the connect).
    last_pong: Arc<AtomicU64>,
    epoch: Instant,
    last_ping: Instant,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One peer's connection state.
#[derive(Default)]
pub(crate) struct Peer {
    conn: Option<Conn>,
    backoff: Option<Backoff>,
}

impl Peer {
    pub(crate) async fn send(
        &mut self,
        inner: &Inner,
        to: &NodeId,
        messages: Vec<Message>,
    ) -> Result<(), TransportError> {
        let ping_every = inner.cfg.ping_interval;
        if let Some(c) = &self.conn {
            let silent = c
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(c.last_pong.load(Ordering::Relaxed)));
            if !c.alive.load(Ordering::Relaxed) || silent > 3 * ping_every {
                debug!(peer = %to, "connection lost; reconnecting");
                self.conn = None;
            }
        }
        if self.conn.is_none() {
            let backoff = self.backoff(inner);
            if !backoff.ready() {
                return Err(TransportError::Unreachable {
                    peer: to.clone(),
                    reason: format!("backing off after {} failed attempts", backoff.failures()),
                });
            }
            match connect(inner, to).await {
                Ok(c) => {
                    if self.backoff(inner).failures() > 0 {
                        info!(local = %inner.me, peer = %to, "reconnected");
                    }
                    self.conn = Some(c);
                    self.backoff(inner).succeeded();
                }
                Err(e) => {
                    self.backoff(inner).failed();
                    return Err(e);
                }
            }
        }
        let frames = frames(inner, &messages)?;
        let Some(c) = self.conn.as_mut() else {
            return Err(TransportError::Closed);
        };
        let ping = c.last_ping.elapsed() >= ping_every;
        let sent = tokio::time::timeout(inner.cfg.send_timeout, async {
            if ping {
                c.sink.feed(WsMessage::Ping(Default::default())).await?;
            }
            for f in frames {
                c.sink.feed(f).await?;
            }
            c.sink.flush().await
        })
        .await;
        if ping {
            c.last_ping = Instant::now();
        }
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.conn = None;
                self.backoff(inner).failed();
                Err(TransportError::Unreachable {
                    peer: to.clone(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                self.conn = None;
                self.backoff(inner).failed();
                Err(TransportError::Timeout(to.clone()))
            }
        }
    }

    /// The reconnect pacing shared with the other transports.
    fn backoff(&mut self, inner: &Inner) -> &mut Backoff {
        self.backoff
            .get_or_insert_with(|| Backoff::new(inner.cfg.backoff_initial, inner.cfg.backoff_max))
    }
}

/// The frames for a batch, in the configured encoding, split to fit the size limit.
fn frames(inner: &Inner, messages: &[Message]) -> Result<Vec<WsMessage>, TransportError> {
    let limit = inner.cfg.max_message_bytes;
    match inner.cfg.encoding {
        Encoding::Binary => {
            let mut frames = Vec::new();
            // The receiver refuses frames over its message and entry caps.
            for batch in raft_wire::frame_batches(messages) {
                let whole = raft_wire::encode_binary(batch).map_err(|e| TransportError::Other(Box::new(e)))?;
                if whole.len() <= limit {
                    frames.push(WsMessage::Binary(whole.into()));
                    continue;
                }
                for m in batch {
                    let one = raft_wire::encode_binary(std::slice::from_ref(m))
                        .map_err(|e| TransportError::Other(Box::new(e)))?;
                    if one.len() > limit {
                        return Err(TransportError::TooLarge { size: one.len(), limit });
                    }
                    frames.push(WsMessage::Binary(one.into()));
                }
            }
            Ok(frames)
        }
        Encoding::Json => messages
            .iter()
            .map(|m| {
                let id = format!("{}-{}", m.from, NEXT_ID.fetch_add(1, Ordering::Relaxed));
                let text = raft_wire::encode_envelope(m, &id);
                if text.len() > limit {
                    return Err(TransportError::TooLarge {
                        size: text.len(),
                        limit,
                    });
                }
                Ok(WsMessage::text(text))
            })
            .collect(),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

async fn connect(inner: &Inner, to: &NodeId) -> Result<Conn, TransportError> {
    let unreachable = |reason: String| TransportError::Unreachable {
        peer: to.clone(),
        reason,
    };
    let addr = inner
        .discovery
        .get_node_address(to)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let timeout = inner.cfg.connect_timeout;
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((addr.host.as_str(), addr.port)))
        .await
        .map_err(|_| TransportError::Timeout(to.clone()))?
        .map_err(|e| unreachable(format!("{addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let (stream, scheme): (Box<dyn Io>, &str) = tls_wrap(inner, tcp, &addr.host).await.map_err(unreachable)?;
    let url = format!("{scheme}://{addr}/raft/");
    let mut req = url.into_client_request().map_err(|e| unreachable(e.to_string()))?;
    let headers = req.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).map_err(|e| unreachable(e.to_string()));
    headers.insert(HEADER_PROTOCOL, value(&PROTOCOL_VERSION.to_string())?);
    headers.insert(HEADER_CLUSTER, value(&inner.cfg.cluster_id)?);
    headers.insert(HEADER_NODE, value(inner.me.as_str())?);
    if let Some(token) = &inner.cfg.token {
        headers.insert("authorization", value(&format!("Bearer {token}"))?);
    }
    let (ws, _) = tokio::time::timeout(
        timeout,
        tokio_tungstenite::client_async_with_config(req, stream, Some(inner.cfg.ws_config())),
    )
    .await
    .map_err(|_| TransportError::Timeout(to.clone()))?
    .map_err(|e| unreachable(format!("handshake with {addr}: {e}")))?;
    let (sink, mut stream) = ws.split();
    let alive = Arc::new(AtomicBool::new(true));
    let last_pong = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let reader = {
        let alive = alive.clone();
        let last_pong = last_pong.clone();
        let peer = to.clone();
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(WsMessage::Pong(_)) => last_pong.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed),
                    Ok(WsMessage::Close(f)) => {
                        debug!(%peer, reason = ?f, "peer closed the connection");
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!(%peer, error = %e, "connection read failed");
                        break;
                    }
                }
            }
            alive.store(false, Ordering::Relaxed);
        })
    };
    Ok(Conn {
        sink,
        alive,
        last_pong,
        epoch,
        last_ping: Instant::now(),
        reader,
    })
}

#[cfg(feature = "tls")]
async fn tls_wrap(
    inner: &Inner,
    tcp: tokio::net::TcpStream,
    host: &str,
) -> Result<(Box<dyn Io>, &'static str), String> {
    let Some(tls) = &inner.cfg.tls else {
        return Ok((Box::new(tcp), "ws"));
    };
    let name = tls.server_name.clone().unwrap_or_else(|| host.to_string());
    let name = rustls_pki_types::ServerName::try_from(name).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    let stream = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    Ok((Box::new(stream), "wss"))
}

#[cfg(not(feature = "tls"))]
async fn tls_wrap(
    _inner: &Inner,
    tcp: tokio::net::TcpStream,
    _host: &str,
) -> Result<(Box<dyn Io>, &'static str), String> {
    Ok((Box::new(tcp), "ws"))
}
