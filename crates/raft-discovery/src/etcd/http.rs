//! A small client for etcd's v3 JSON gateway (`POST /v3/...`, keys and values in
//! base64, int64s as strings), over HTTP/1.1 with hyper: one connection per
//! request, so an etcd restart needs no reconnect logic here, and every request
//! bounded by the configured timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::DiscoveryError;

pub(super) const BACKEND: &str = "etcd";
/// The largest response body read (a listing of many nodes stays far below).
const MAX_BODY: usize = 16 << 20;

/// Aborts the connection task when the request (or watch) is dropped, so a
/// timed-out request leaves nothing behind.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

pub(super) fn unb64(v: &Value) -> Option<String> {
    let bytes = B64.decode(v.as_str()?).ok()?;
    String::from_utf8(bytes).ok()
}

/// An int64 as the gateway prints it (a string), or a plain number; absent is 0.
pub(super) fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// The key after `prefix`: `[prefix, prefix_end)` is everything under it.
pub(super) fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    "\0".to_string()
}

/// One key-value pair from a range or a watch event.
#[derive(Debug, Clone)]
pub(super) struct Kv {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) mod_revision: i64,
}

impl Kv {
    pub(super) fn from_json(v: &Value) -> Option<Kv> {
        Some(Kv {
            key: unb64(&v["key"])?,
            value: v.get("value").and_then(unb64).unwrap_or_default(),
            mod_revision: int(&v["mod_revision"]),
        })
    }
}

/// The gateway client: endpoints tried in turn, starting from the last that worked.
#[derive(Debug)]
pub(super) struct Http {
    endpoints: Vec<String>,
    current: AtomicUsize,
    timeout: Duration,
}

impl Http {
    pub(super) fn new(endpoints: Vec<String>, timeout: Duration) -> Self {
        Http {
            endpoints,
            current: AtomicUsize::new(0),
            timeout,
        }
    }

    pub(super) fn servers(&self) -> String {
        self.endpoints.join(",")
    }

    fn timeout_error(&self) -> DiscoveryError {
        DiscoveryError::Timeout {
            backend: BACKEND,
            server: self.servers(),
            after: self.timeout,
        }
    }

    /// Sends `body` to `path` on the first endpoint that accepts a connection.
    async fn send(&self, path: &str, body: &Value) -> Result<(hyper::Response<Incoming>, AbortOnDrop), DiscoveryError> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let endpoint = &self.endpoints[idx];
            match self.send_to(endpoint, path, body).await {
                Ok(r) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(r);
                }
                Err(reason) => last = Some((endpoint.clone(), reason)),
            }
        }
        let (server, reason) = last.unwrap_or_else(|| (String::new(), "no endpoints configured".into()));
        Err(DiscoveryError::Unreachable {
            backend: BACKEND,
            server,
            reason,
        })
    }

    async fn send_to(
        &self,
        endpoint: &str,
        path: &str,
        body: &Value,
    ) -> Result<(hyper::Response<Incoming>, AbortOnDrop), String> {
        let tcp = TcpStream::connect(endpoint).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        let guard = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let req = Request::post(path)
            .header(hyper::header::HOST, endpoint)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        Ok((resp, guard))
    }

    /// A unary call: the whole JSON answer, or a typed error, within the timeout.
    pub(super) async fn call(&self, path: &str, body: Value) -> Result<Value, DiscoveryError> {
        let work = async {
            let (resp, _guard) = self.send(path, &body).await?;
            let status = resp.status();
            let bytes = read_body(resp.into_body())
                .await
                .map_err(|reason| DiscoveryError::Unreachable {
                    backend: BACKEND,
                    server: self.servers(),
                    reason,
                })?;
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| DiscoveryError::Backend {
                backend: BACKEND,
                reason: format!("{path}: answer is not JSON ({e})"),
            })?;
            check(status, path, value)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error()))
    }

    /// Opens a watch on `[key, range_end)` from `start_revision`; returns once etcd
    /// confirmed it (within the timeout).
    pub(super) async fn watch(&self, key: &str, range_end: &str, start_revision: i64) -> Result<Watch, DiscoveryError> {
        let body = json!({"create_request": {
            "key": b64(key),
            "range_end": b64(range_end),
            "start_revision": start_revision.to_string(),
        }});
        let open = async {
            let (resp, guard) = self.send("/v3/watch", &body).await?;
            let status = resp.status();
            let mut watch = Watch {
                body: resp.into_body(),
                buf: BytesMut::new(),
                server: self.servers(),
                _conn: guard,
            };
            if status != StatusCode::OK {
                let bytes = read_body(watch.body).await.unwrap_or_default();
                let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                return Err(check(status, "/v3/watch", value)
                    .err()
                    .unwrap_or_else(|| DiscoveryError::Backend {
                        backend: BACKEND,
                        reason: format!("/v3/watch answered {status}"),
                    }));
            }
            match watch.next().await? {
                Some(first) if first["created"].as_bool() == Some(true) => Ok(watch),
                other => Err(DiscoveryError::Backend {
                    backend: BACKEND,
                    reason: format!("watch not created: {other:?}"),
                }),
            }
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error()))
    }
}

/// Reads a whole body, refusing one larger than [`MAX_BODY`].
async fn read_body(mut body: Incoming) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BODY {
                return Err(format!("answer larger than {MAX_BODY} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// A gateway answer: 200 with the message, or an error object
/// (`{"error": ..., "message": ..., "code": ...}`).
fn check(status: StatusCode, path: &str, value: Value) -> Result<Value, DiscoveryError> {
    if status == StatusCode::OK && value.get("error").is_none() {
        return Ok(value);
    }
    let message = value
        .get("message")
        .or_else(|| value.get("error"))
        .map(|m| m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string()))
        .unwrap_or_default();
    Err(DiscoveryError::Backend {
        backend: BACKEND,
        reason: format!("{path} answered {status}: {message}"),
    })
}

/// An open watch: a stream of newline-delimited `{"result": WatchResponse}`.
pub(super) struct Watch {
    body: Incoming,
    buf: BytesMut,
    server: String,
    _conn: AbortOnDrop,
}

impl Watch {
    /// The next watch response, `None` when etcd closed the stream.
    pub(super) async fn next(&mut self) -> Result<Option<Value>, DiscoveryError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = &line[..pos];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let value: Value = serde_json::from_slice(line).map_err(|e| DiscoveryError::Backend {
                    backend: BACKEND,
                    reason: format!("watch sent something that is not JSON ({e})"),
                })?;
                if let Some(err) = value.get("error") {
                    return Err(DiscoveryError::Backend {
                        backend: BACKEND,
                        reason: format!("watch failed: {err}"),
                    });
                }
                return Ok(Some(value["result"].clone()));
            }
            if self.buf.len() > MAX_BODY {
                return Err(DiscoveryError::Backend {
                    backend: BACKEND,
                    reason: "watch message too large".into(),
                });
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(DiscoveryError::Unreachable {
                        backend: BACKEND,
                        server: self.server.clone(),
                        reason: format!("watch stream broke: {e}"),
                    })
                }
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            let n = chunk.len();
                            self.buf.extend_from_slice(chunk);
                            data.advance(n);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_and_int64_strings() {
        assert_eq!(prefix_end("/easyraft/"), "/easyraft0");
        assert_eq!(int(&json!("7587861231")), 7587861231);
        assert_eq!(int(&json!(12)), 12);
        assert_eq!(int(&Value::Null), 0);
        assert_eq!(unb64(&json!(b64("/a/node1"))).as_deref(), Some("/a/node1"));
    }
}
