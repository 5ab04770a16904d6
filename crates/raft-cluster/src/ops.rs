//! The operator endpoints an API server built on a node's [`RaftHandle`](crate::RaftHandle)
//! serves, rendered in one place so they answer the same everywhere: `GET /health` for
//! load balancers, `GET /status` for people and scripts, `GET /metrics` for Prometheus.
//! The transports carry Raft traffic only.

use raft_core::NodeId;
use serde_json::json;

use crate::events::NodeView;
use crate::metrics::Metrics;

/// The paths [`respond`] answers.
pub const PATHS: [&str; 3] = ["/health", "/status", "/metrics"];

/// One HTTP answer: status code, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl OpsResponse {
    fn json(status: u16, body: serde_json::Value) -> Self {
        OpsResponse {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    /// The status line's reason phrase for [`status`](Self::status).
    pub fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            _ => "Service Unavailable",
        }
    }
}

/// The answer to `GET path` (a query string is ignored) for node `id`, given its
/// live view and metrics (`None` before the node started); `None` if `path` is not
/// one of [`PATHS`].
///
/// - `/health`: 200 `{"status":"ok","id":..}` while the node runs, else 503
///   (`"stopped"`, or `"disk-stalled"` while a log write is stuck).
/// - `/status`: 200 with role, term, leader, commit, applied and running, else 503.
/// - `/metrics`: 200 with [`Metrics::to_prometheus`], else 503.
///
/// ```
/// use raft_cluster::ops::respond;
/// let r = respond("/health?lb=1", &"node1".into(), None, None).unwrap();
/// assert_eq!((r.status, r.body.as_str()), (503, r#"{"id":"node1","status":"stopped"}"#));
/// assert!(respond("/nope", &"node1".into(), None, None).is_none());
/// ```
pub fn respond(path: &str, id: &NodeId, view: Option<&NodeView>, metrics: Option<Metrics>) -> Option<OpsResponse> {
    let running = view.is_some_and(|v| v.running);
    let stalled = view.is_some_and(|v| v.disk_stalled);
    let response = match path.split('?').next().unwrap_or("") {
        "/health" if running && stalled => {
            OpsResponse::json(503, json!({ "status": "disk-stalled", "id": id.as_str() }))
        }
        "/health" if running => OpsResponse::json(200, json!({ "status": "ok", "id": id.as_str() })),
        "/health" => OpsResponse::json(503, json!({ "status": "stopped", "id": id.as_str() })),
        "/status" => match view {
            Some(v) => OpsResponse::json(
                200,
                json!({
                    "id": id.as_str(),
                    "role": v.role.to_string(),
                    "term": v.term,
                    "leader": v.leader.as_ref().map(|l| l.as_str()),
                    "commit": v.commit,
                    "applied": v.applied,
                    "running": v.running,
                    "disk_stalled": v.disk_stalled,
                }),
            ),
            None => OpsResponse::json(503, json!({ "id": id.as_str(), "running": false })),
        },
        "/metrics" => match metrics {
            Some(m) => OpsResponse {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: m.to_prometheus(id.as_str()),
            },
            None => OpsResponse::json(503, json!({ "id": id.as_str(), "running": false })),
        },
        _ => return None,
    };
    Some(response)
}
