//! The binary stream on the API port: `GET /v1/stream` upgrades to a WebSocket whose
//! binary messages are frames of many calls ([`easyraft_client::stream`]: postcard,
//! [`StreamRequest`]s in, [`StreamResponse`]s out). Every call is dispatched to the same
//! jsonrpsee [`Methods`] as `POST /`, all at once, so a slow call (a lock wait, a watch)
//! holds up no other; each answer goes back as soon as it is ready, with whatever
//! other answers are ready in the same frame, in any order.
//!
//! Bounds: a frame is at most [`MAX_FRAME`] bytes and [`MAX_PER_FRAME`] calls; a
//! connection has at most [`MAX_IN_FLIGHT`] calls and [`MAX_IN_FLIGHT_BYTES`] of them in
//! flight: past either, the server stops reading the socket until some complete
//! (backpressure to the client through TCP). A frame that breaks them, or is not a
//! frame, closes the connection with a close code ([`StreamError::close_code`]).
//!
//! Authorization is decided once, from the upgrade request's headers, by the caller's
//! [`Refuse`] rule, then applied to every call on the stream as the HTTP path applies
//! it to every request.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use easyraft_client::stream::{
    decode, encode, encoded_len, FrameError, StreamOutcome, StreamRequest, StreamResponse, MAX_FRAME, MAX_IN_FLIGHT,
    MAX_IN_FLIGHT_BYTES, MAX_PER_FRAME, PATH,
};
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use jsonrpsee::Methods;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use crate::serve::{json_reply, MAX_BODY};

// A frame is as large as the HTTP path's largest body.
const _: () = assert!(MAX_FRAME == MAX_BODY);

/// Whether a call may be made on a stream: `Some((code, message))` refuses it.
pub type Refuse = Arc<dyn Fn(&str) -> Option<(i64, String)> + Send + Sync>;

/// Why a stream connection was closed by the server.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A frame broke a limit or was not a frame.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A text message: the stream is binary.
    #[error("a text message on the binary stream")]
    Text,
    /// The WebSocket failed (a message over the limit, a protocol error, IO).
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
}

impl StreamError {
    /// The close code sent for it: 1009 (too big) for a frame over the limits, 1007
    /// (invalid payload) for a malformed one, 1003 (unsupported) for a text message,
    /// 1002 (protocol) for a WebSocket error.
    pub fn close_code(&self) -> CloseCode {
        use tokio_tungstenite::tungstenite::Error as Ws;
        match self {
            StreamError::Frame(FrameError::TooLarge { .. } | FrameError::TooMany { .. }) => CloseCode::Size,
            StreamError::Frame(_) => CloseCode::Invalid,
            StreamError::Text => CloseCode::Unsupported,
            StreamError::Ws(Ws::Capacity(_)) => CloseCode::Size,
            StreamError::Ws(_) => CloseCode::Protocol,
        }
    }
}

/// Whether `req` asks for the stream (`GET /v1/stream`).
pub fn is_stream<B>(req: &Request<B>) -> bool {
    req.method() == Method::GET && req.uri().path() == PATH
}

fn header<B>(req: &Request<B>, name: hyper::header::HeaderName) -> &str {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// Answers a stream upgrade request: 101 and then, on the upgraded connection, calls
/// to `methods` that `refuse` lets through, until the client closes it (or the server
/// it came from stops, [`crate::serve::spawn_bound`]); 400 if it is not a WebSocket
/// upgrade.
pub fn upgrade(req: Request<Incoming>, methods: Methods, refuse: Refuse) -> Response<Full<Bytes>> {
    use hyper::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
    let wants = header(&req, CONNECTION)
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        && header(&req, UPGRADE).eq_ignore_ascii_case("websocket")
        && header(&req, SEC_WEBSOCKET_VERSION) == "13";
    let key = header(&req, SEC_WEBSOCKET_KEY).to_string();
    if !wants || key.is_empty() {
        return json_reply(
            400,
            json!({ "error": format!("{PATH} needs a WebSocket upgrade (version 13)") }),
        );
    }
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    crate::serve::spawn_bound(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config())).await;
                serve_stream(ws, methods, refuse).await;
            }
            Err(e) => debug!(error = %e, "stream upgrade failed"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, hyper::header::HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, hyper::header::HeaderValue::from_static("websocket"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        h.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Serves calls on an open stream until it ends; a broken limit closes it with its
/// close code.
pub async fn serve_stream<S>(mut ws: WebSocketStream<S>, methods: Methods, refuse: Refuse)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    match run(&mut ws, methods, refuse).await {
        Ok(()) => {
            let _ = ws.close(None).await;
        }
        Err(e) => {
            debug!(error = %e, "stream closed");
            let frame = CloseFrame {
                code: e.close_code(),
                reason: e.to_string().chars().take(100).collect::<String>().into(),
            };
            let _ = ws.close(Some(frame)).await;
        }
    }
}

/// Calls in flight: their tasks, and for each task its request's id and size.
#[derive(Default)]
struct InFlight {
    tasks: JoinSet<StreamResponse>,
    calls: HashMap<tokio::task::Id, (u64, usize)>,
    bytes: usize,
}

impl InFlight {
    /// Whether another frame may be read without going past the bounds.
    fn has_room(&self) -> bool {
        self.tasks.len().saturating_add(MAX_PER_FRAME) <= MAX_IN_FLIGHT && self.bytes < MAX_IN_FLIGHT_BYTES
    }

    fn start(&mut self, r: StreamRequest, methods: &Methods, refuse: &Refuse) {
        let size = r.method.len().saturating_add(r.params.len());
        let id = r.id;
        let (methods, refuse) = (methods.clone(), refuse.clone());
        let task = self.tasks.spawn(async move {
            let outcome = call(&methods, &refuse, &r).await;
            StreamResponse { id: r.id, outcome }
        });
        self.calls.insert(task.id(), (id, size));
        self.bytes = self.bytes.saturating_add(size);
    }

    /// What a finished task answers (a call that panicked answers an internal error).
    fn finish(
        &mut self,
        done: Result<(tokio::task::Id, StreamResponse), tokio::task::JoinError>,
    ) -> Option<StreamResponse> {
        let task = match &done {
            Ok((task, _)) => *task,
            Err(e) => e.id(),
        };
        let (id, size) = self.calls.remove(&task)?;
        self.bytes = self.bytes.saturating_sub(size);
        Some(match done {
            Ok((_, r)) => r,
            Err(e) => StreamResponse {
                id,
                outcome: StreamOutcome::Err {
                    code: -32603,
                    message: format!("internal error: {e}"),
                    data: None,
                },
            },
        })
    }
}

async fn run<S>(ws: &mut WebSocketStream<S>, methods: Methods, refuse: Refuse) -> Result<(), StreamError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut flight = InFlight::default();
    loop {
        tokio::select! {
            message = ws.next(), if flight.has_room() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    for r in decode::<StreamRequest>(&bytes)? {
                        flight.start(r, &methods, &refuse);
                    }
                }
                Some(Ok(Message::Text(_))) => return Err(StreamError::Text),
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                // Pings are answered by tungstenite.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            },
            Some(done) = flight.tasks.join_next_with_id(), if !flight.tasks.is_empty() => {
                let mut ready: Vec<StreamResponse> = flight.finish(done).into_iter().collect();
                while let Some(done) = flight.tasks.try_join_next_with_id() {
                    ready.extend(flight.finish(done));
                }
                send(ws, ready).await?;
            }
        }
    }
}

/// Sends `ready` in as few frames as the limits allow; an answer too large for a frame
/// is replaced by an error.
async fn send<S>(ws: &mut WebSocketStream<S>, ready: Vec<StreamResponse>) -> Result<(), StreamError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    // Room for the frame's count and some slack.
    const ROOM: usize = MAX_FRAME - 64;
    let mut frame: Vec<StreamResponse> = Vec::new();
    let mut size = 0usize;
    for mut r in ready {
        let mut len = encoded_len(&r);
        if len > ROOM {
            r.outcome = StreamOutcome::Err {
                code: -32603,
                message: format!("the answer ({len} bytes) is larger than a stream frame ({MAX_FRAME} bytes)"),
                data: None,
            };
            len = encoded_len(&r);
        }
        if !frame.is_empty() && (frame.len() >= MAX_PER_FRAME || size.saturating_add(len) > ROOM) {
            flush(ws, &mut frame).await?;
            size = 0;
        }
        size = size.saturating_add(len);
        frame.push(r);
    }
    flush(ws, &mut frame).await
}

async fn flush<S>(ws: &mut WebSocketStream<S>, frame: &mut Vec<StreamResponse>) -> Result<(), StreamError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    if frame.is_empty() {
        return Ok(());
    }
    let bytes = encode(frame)?;
    frame.clear();
    ws.send(Message::Binary(bytes.into())).await?;
    Ok(())
}

/// Makes one call as `POST /` would (the same `methods`, the same JSON-RPC request).
/// The params' text goes into the request as it came and the result's text comes back
/// as the method wrote it: no JSON tree is built on the way (jsonrpsee checks the
/// request, the method parses its params once).
async fn call(methods: &Methods, refuse: &Refuse, r: &StreamRequest) -> StreamOutcome {
    let err = |code: i64, message: String| StreamOutcome::Err {
        code,
        message,
        data: None,
    };
    if let Some((code, message)) = refuse(&r.method) {
        return err(code, message);
    }
    let method = match serde_json::to_string(&r.method) {
        Ok(m) => m,
        Err(e) => return err(-32600, format!("invalid request: method: {e}")),
    };
    let params = r.params.trim();
    let mut request = String::with_capacity(params.len().saturating_add(method.len()).saturating_add(48));
    request.push_str(r#"{"jsonrpc":"2.0","id":1,"method":"#);
    request.push_str(&method);
    if !params.is_empty() && params != "null" {
        // Checked first: text that is not one JSON value must not splice into the
        // request (`{"a":1},"id":2` would otherwise change it).
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(params) {
            return err(-32700, format!("parse error: params: {e}"));
        }
        request.push_str(r#","params":"#);
        request.push_str(params);
    }
    request.push('}');
    match methods.raw_json_request(&request, 1).await {
        Ok((answer, _)) => outcome(answer.get()),
        Err(e) => err(-32600, format!("invalid request: {e}")),
    }
}

/// A JSON-RPC answer's text as a stream outcome, its result or error data copied as text.
fn outcome(answer: &str) -> StreamOutcome {
    use serde_json::value::RawValue;
    /// A present field as its text, `null` included (an `Option` alone reads `null`
    /// as absent, and `null` is a result).
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
    }
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(default, borrow, deserialize_with = "present")]
        result: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<ErrorObject<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorObject<'a> {
        code: i64,
        #[serde(default)]
        message: String,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
    }
    match serde_json::from_str::<Answer>(answer) {
        Ok(Answer { error: Some(e), .. }) => StreamOutcome::Err {
            code: e.code,
            message: e.message,
            data: e.data.map(|d| d.get().to_owned()).filter(|d| d != "null"),
        },
        Ok(Answer { result: Some(v), .. }) => StreamOutcome::Ok(v.get().to_owned()),
        _ => StreamOutcome::Err {
            code: -32603,
            message: "internal error: the method gave no JSON-RPC answer".into(),
            data: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_becomes_its_result_or_error_text_null_results_included() {
        let ok = outcome(r#"{"jsonrpc":"2.0","id":1,"result":{"ok":true,"index":7}}"#);
        assert_eq!(ok, StreamOutcome::Ok(r#"{"ok":true,"index":7}"#.into()));
        assert_eq!(
            outcome(r#"{"jsonrpc":"2.0","id":1,"result":null}"#),
            StreamOutcome::Ok("null".into())
        );
        let refused = outcome(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"not the leader","data":{"leader":"n2"}}}"#,
        );
        assert_eq!(
            refused,
            StreamOutcome::Err {
                code: -32020,
                message: "not the leader".into(),
                data: Some(r#"{"leader":"n2"}"#.into())
            }
        );
        assert!(matches!(outcome("{}"), StreamOutcome::Err { code: -32603, .. }));
        assert!(matches!(outcome("not json"), StreamOutcome::Err { code: -32603, .. }));
    }

    #[tokio::test]
    async fn params_that_are_not_one_json_value_are_refused_before_they_reach_the_request() {
        let mut methods = jsonrpsee::RpcModule::new(());
        methods
            .register_method("echo", |p, _, _| p.parse::<serde_json::Value>())
            .unwrap();
        let methods: Methods = methods.into();
        let refuse: Refuse = Arc::new(|_| None);
        let req = |params: &str| StreamRequest {
            id: 1,
            method: "echo".into(),
            params: params.into(),
        };
        assert_eq!(
            call(&methods, &refuse, &req(r#"{"a":[1,2]}"#)).await,
            StreamOutcome::Ok(r#"{"a":[1,2]}"#.into())
        );
        for bad in [r#"{"a":1},"id":2"#, "{", "1 2"] {
            assert!(
                matches!(
                    call(&methods, &refuse, &req(bad)).await,
                    StreamOutcome::Err { code: -32700, .. }
                ),
                "{bad}"
            );
        }
    }
}
