//! Checks a JSON-RPC request's envelope before jsonrpsee sees it, so that every
//! malformed request gets a JSON-RPC error with the same HTTP status: a body that is
//! not JSON is `-32700` (jsonrpsee answers 400 or 200 depending on the bytes), and an
//! `id` that is an object, an array or a boolean is `-32600` (jsonrpsee answers with
//! the body `null`). Both are HTTP 200, like every other JSON-RPC error. A body over
//! the size limit is HTTP 413.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Limited};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

/// The tower layer; see the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EnvelopeLayer {
    /// Bodies larger than this are refused with 413.
    pub(crate) max_body: usize,
}

impl<S> tower::Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope {
            inner,
            max_body: self.max_body,
        }
    }
}

/// See [`EnvelopeLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Envelope<S> {
    inner: S,
    max_body: usize,
}

/// The only field looked at: every other one is skipped (but its syntax checked).
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Option<Value>,
}

fn bad_id(p: &Probe) -> bool {
    matches!(p.id, Some(Value::Object(_) | Value::Array(_) | Value::Bool(_)))
}

/// The error to answer instead of running the request, if any.
pub(crate) fn problem(body: &[u8]) -> Option<(i32, &'static str)> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let probed = match start.map(|i| body[i]) {
        Some(b'[') => serde_json::from_slice::<Vec<Probe>>(body).map(|ps| ps.iter().any(bad_id)),
        _ => serde_json::from_slice::<Probe>(body).map(|p| bad_id(&p)),
    };
    match probed {
        Ok(false) => None,
        Ok(true) => Some((-32600, "Invalid request: an id must be a string, a number or null")),
        // Valid JSON of another shape (a number, a batch of non-objects): jsonrpsee
        // answers those itself, consistently.
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => None,
        Err(_) => Some((-32700, "Parse error")),
    }
}

fn answer(code: i32, message: &str) -> HttpResponse<HttpBody> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut resp = HttpResponse::new(HttpBody::from(body.to_string()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

impl<S> tower::Service<HttpRequest<HttpBody>> for Envelope<S>
where
    S: tower::Service<HttpRequest<HttpBody>, Response = HttpResponse<HttpBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = HttpResponse<HttpBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<HttpBody>) -> Self::Future {
        let json_post = req.method() == http::Method::POST
            && req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
        // The service that was made ready serves this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !json_post {
            return Box::pin(inner.call(req));
        }
        let max = self.max_body;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match Limited::new(body, max).collect().await {
                Ok(c) => c.to_bytes(),
                // Over the limit (or a body that broke off): 413, as jsonrpsee answers.
                Err(_) => {
                    let mut resp = answer(-32600, "Invalid request: the body is over the size limit");
                    *resp.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
                    return Ok(resp);
                }
            };
            if let Some((code, message)) = problem(&bytes) {
                return Ok(answer(code, message));
            }
            inner
                .call(HttpRequest::from_parts(
                    parts,
                    HttpBody::new(http_body_util::Full::new(bytes)),
                ))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_and_bad_ids_are_answered_here_and_the_rest_passes() {
        for body in ["", "not json", "{", "[", "{\"jsonrpc\":\"2.0\""] {
            assert_eq!(problem(body.as_bytes()).map(|p| p.0), Some(-32700), "{body:?}");
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":true,"method":"m"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":{},"method":"m"}]"#,
        ] {
            assert_eq!(problem(body.as_bytes()).map(|p| p.0), Some(-32600), "{body:?}");
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"k":[1,2,{"x":null}]}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"notify"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
            "[]",
            "5",
        ] {
            assert_eq!(problem(body.as_bytes()), None, "{body:?}");
        }
    }
}
