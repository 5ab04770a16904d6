//! `GET /health`, `GET /status` and `GET /metrics` on the JSON-RPC port, answered
//! by an HTTP middleware in front of jsonrpsee (and of the token check: like on the
//! WebSocket transport, they tell how the node is doing, not what it stores). The
//! answers come from [`raft_cluster::ops`], so both transports answer alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use raft_cluster::ops::Observed;
use raft_core::NodeId;

/// The tower layer that answers the operator endpoints.
#[derive(Clone)]
pub(crate) struct OpsLayer {
    pub(crate) me: NodeId,
    pub(crate) state: Arc<Observed>,
}

impl<S> tower::Layer<S> for OpsLayer {
    type Service = Ops<S>;

    fn layer(&self, inner: S) -> Ops<S> {
        Ops {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`OpsLayer`].
#[derive(Clone)]
pub(crate) struct Ops<S> {
    inner: S,
    layer: OpsLayer,
}

impl<S, B> tower::Service<HttpRequest<B>> for Ops<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse<HttpBody>>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<HttpBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if req.method() == http::Method::GET {
            if let Some(r) = self.layer.state.respond(req.uri().path(), &self.layer.me) {
                let mut resp = HttpResponse::new(HttpBody::from(r.body));
                *resp.status_mut() = http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::OK);
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(r.content_type),
                );
                return Box::pin(async move { Ok(resp) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}
