//! The client side of the binary stream ([`crate::stream`]): one multiplexed WebSocket
//! connection per endpoint (and token), opened on the first call, opened again after
//! it was lost; many calls share it, each waiting for its own id.
//!
//! The outcomes the retry policy needs are told apart as over HTTP: a connection or an
//! upgrade that fails is [`HttpError::Connect`] (nothing was sent); a connection lost,
//! or no answer within the timeout, once the request was handed to the connection is
//! [`HttpError::Exchange`] (it may have been sent). A call that ends in any way takes
//! its id out of the connection's table; a lost connection fails all its calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::endpoint::Endpoint;
use crate::http::{HttpClient, HttpError};
use crate::stream::{self, StreamOutcome, StreamRequest, StreamResponse};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<StreamOutcome>>>>;

/// A connection's key: the endpoint and the token its upgrade carried.
type Key = (String, Option<String>);

/// One endpoint's connection, connected by the first call that finds none (the others
/// wait for it rather than connecting too).
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>;

/// The stream connections of a client, one per endpoint and token.
#[derive(Debug, Default)]
pub struct StreamPool {
    conns: Mutex<HashMap<Key, Slot>>,
    next_id: AtomicU64,
}

/// One live connection: its writer's queue and the calls waiting for an answer.
#[derive(Debug)]
struct Conn {
    out: mpsc::Sender<StreamRequest>,
    pending: Pending,
    alive: Arc<AtomicBool>,
    _task: AbortOnDrop,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Takes a call's id out of the table however the call ends.
struct Unregister<'a>(&'a Pending, u64);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.0.lock() {
            p.remove(&self.1);
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(stream::MAX_FRAME))
        .max_frame_size(Some(stream::MAX_FRAME))
}

impl StreamPool {
    /// How many calls wait for an answer over all connections (for tests: none once
    /// every call returned).
    pub fn pending(&self) -> usize {
        let slots: Vec<Slot> = match self.conns.lock() {
            Ok(conns) => conns.values().cloned().collect(),
            Err(_) => return 0,
        };
        slots
            .iter()
            .filter_map(|slot| slot.try_lock().ok().and_then(|c| c.clone()))
            .map(|c| c.pending.lock().map(|p| p.len()).unwrap_or(0))
            .sum()
    }

    /// Makes one call of `method` with `params` (JSON text) to `ep` over its stream,
    /// connecting first if it has none; waits at most `timeout` for the answer (the
    /// connect has `http`'s connect timeout).
    pub async fn call(
        &self,
        http: &HttpClient,
        ep: &Endpoint,
        token: Option<&str>,
        method: &str,
        params: String,
        timeout: Duration,
    ) -> Result<StreamOutcome, HttpError> {
        let conn = self.conn(http, ep, token).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = conn.pending.lock() {
            p.insert(id, tx);
        }
        let _unregister = Unregister(&conn.pending, id);
        let request = StreamRequest {
            id,
            method: method.to_string(),
            params,
        };
        let work = async {
            conn.out
                .send(request)
                .await
                // Refused by a connection that has ended: nothing was sent.
                .map_err(|_| HttpError::Connect("the stream connection closed".into()))?;
            rx.await
                .map_err(|_| HttpError::Exchange("the stream connection was lost".into()))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| HttpError::Exchange(format!("timed out after {} ms", timeout.as_millis())))?
    }

    /// The live connection to `ep` with `token`, connecting a new one if there is none
    /// (or it was lost).
    async fn conn(&self, http: &HttpClient, ep: &Endpoint, token: Option<&str>) -> Result<Arc<Conn>, HttpError> {
        let key = (ep.to_string(), token.map(str::to_string));
        let slot = match self.conns.lock() {
            Ok(mut conns) => conns.entry(key).or_default().clone(),
            Err(_) => return Err(HttpError::Connect("the stream pool is poisoned".into())),
        };
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.alive.load(Ordering::Acquire)) {
            return Ok(c.clone());
        }
        // A lost connection goes (its task has ended); a new one takes its place.
        *slot = None;
        let conn = Arc::new(connect(http, ep, token).await?);
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

async fn connect(http: &HttpClient, ep: &Endpoint, token: Option<&str>) -> Result<Conn, HttpError> {
    let io = http.connect(ep).await?;
    let url = format!("ws://{}{}", ep.authority(), stream::PATH);
    let mut req = url
        .into_client_request()
        .map_err(|e| HttpError::Connect(format!("bad stream request: {e}")))?;
    if let Some(t) = token {
        let value = format!("Bearer {t}")
            .parse()
            .map_err(|e| HttpError::Connect(format!("bad token: {e}")))?;
        req.headers_mut().insert("authorization", value);
    }
    let limit = http.connect_timeout;
    let (ws, _) = tokio::time::timeout(
        limit,
        tokio_tungstenite::client_async_with_config(req, io, Some(ws_config())),
    )
    .await
    .map_err(|_| HttpError::Connect(format!("no stream upgrade within {} ms", limit.as_millis())))?
    .map_err(|e| HttpError::Connect(format!("stream upgrade: {e}")))?;
    let (out, rx) = mpsc::channel(stream::MAX_PER_FRAME);
    let pending: Pending = Arc::default();
    let alive = Arc::new(AtomicBool::new(true));
    let task = tokio::spawn(run(ws, rx, pending.clone(), alive.clone(), ep.to_string()));
    Ok(Conn {
        out,
        pending,
        alive,
        _task: AbortOnDrop(task),
    })
}

/// Writes queued requests (as many as are ready in one frame) and hands each response
/// to its call, until the connection fails or the pool drops it; then fails every
/// call still waiting (by dropping their senders).
async fn run<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    mut rx: mpsc::Receiver<StreamRequest>,
    pending: Pending,
    alive: Arc<AtomicBool>,
    endpoint: String,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let why = loop {
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { break "closed by the client".to_string() };
                let mut size = stream::encoded_len(&first);
                let mut frame = vec![first];
                while frame.len() < stream::MAX_PER_FRAME {
                    let Ok(next) = rx.try_recv() else { break };
                    size = size.saturating_add(stream::encoded_len(&next));
                    frame.push(next);
                    if size >= stream::MAX_FRAME / 2 {
                        break;
                    }
                }
                if let Err(e) = send(&mut ws, &frame, &pending).await {
                    break e;
                }
            }
            message = ws.next() => match message {
                Some(Ok(Message::Binary(bytes))) => match stream::decode::<StreamResponse>(&bytes) {
                    Ok(responses) => {
                        if let Ok(mut p) = pending.lock() {
                            for r in responses {
                                if let Some(tx) = p.remove(&r.id) {
                                    let _ = tx.send(r.outcome);
                                }
                            }
                        }
                    }
                    Err(e) => break format!("bad frame from the server: {e}"),
                },
                Some(Ok(Message::Close(frame))) => break format!("closed by the server: {frame:?}"),
                Some(Ok(Message::Text(_))) => break "a text message from the server".to_string(),
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the server closed the connection".to_string(),
            },
        }
    };
    tracing::debug!(%endpoint, reason = %why, "stream connection ended");
    alive.store(false, Ordering::Release);
    rx.close();
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
    let _ = ws.close(None).await;
}

/// Sends one frame; a request too large for a frame alone is answered here with an
/// error (it was not sent) rather than failing the connection.
async fn send<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    frame: &[StreamRequest],
    pending: &Pending,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let bytes = match stream::encode(frame) {
        Ok(b) => b,
        Err(e) if frame.len() > 1 => {
            // Too large together: one at a time.
            tracing::debug!(error = %e, "splitting a frame");
            for r in frame {
                Box::pin(send(ws, std::slice::from_ref(r), pending)).await?;
            }
            return Ok(());
        }
        Err(e) => {
            if let (Some(r), Ok(mut p)) = (frame.first(), pending.lock()) {
                if let Some(tx) = p.remove(&r.id) {
                    let _ = tx.send(StreamOutcome::Err {
                        code: i64::from(crate::codes::INVALID_REQUEST),
                        message: format!("request too large for a stream frame: {e}"),
                        data: None,
                    });
                }
            }
            return Ok(());
        }
    };
    ws.send(Message::Binary(bytes.into())).await.map_err(|e| e.to_string())
}
