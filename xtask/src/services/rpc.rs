//! The JSON-RPC client the services demo calls the nodes with: one HTTP connection
//! per call, as `curl` makes, that can follow the services' redirects to the leader;
//! and the `curl` line that makes the same call.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::api::{BACKPRESSURE, NOT_APPLIED, NOT_LEADER, UNAVAILABLE, UNKNOWN_OUTCOME};
use serde_json::{json, Value};

use crate::http;
use crate::ui::Ui;

/// How long one call may take, unless it long-polls.
const CALL: Duration = Duration::from_secs(6);

/// A JSON-RPC 2.0 request body, members in the usual order.
fn request(method: &str, params: &Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":{},"params":{params}}}"#,
        json!(method)
    )
}

/// A `curl` line for `method(params)` on `port`.
pub fn curl(token: &str, port: u16, method: &str, params: &Value) -> String {
    let body = request(method, params);
    format!(
        "curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}' http://127.0.0.1:{port}/"
    )
}

/// Why a call failed.
#[derive(Clone, Debug)]
pub(crate) enum CallError {
    /// The node answered with a JSON-RPC error object.
    Rpc {
        /// The error code.
        code: i64,
        /// The message.
        message: String,
        /// The data, or `Null`.
        data: Value,
    },
    /// No JSON-RPC answer: connection refused or reset, timeout, not JSON.
    Net(String),
}

impl CallError {
    pub(crate) fn code(&self) -> Option<i64> {
        match self {
            CallError::Rpc { code, .. } => Some(*code),
            CallError::Net(_) => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rpc { code, message, data } if data.is_null() => write!(f, "error {code} {message:?}"),
            CallError::Rpc { code, message, data } => write!(f, "error {code} {message:?} data {data}"),
            CallError::Net(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for CallError {}

/// A JSON-RPC client over HTTP, one connection per call as `curl` makes, that can
/// follow the services' redirects to the leader.
#[derive(Clone)]
pub(crate) struct Rpc {
    ports: Arc<BTreeMap<String, u16>>,
    token: String,
    leader: Arc<Mutex<String>>,
}

impl Rpc {
    pub(super) fn new(ports: BTreeMap<String, u16>, token: &str) -> Self {
        let first = ports.keys().next().cloned().unwrap_or_default();
        Rpc {
            ports: Arc::new(ports),
            token: token.to_string(),
            leader: Arc::new(Mutex::new(first)),
        }
    }

    pub(super) fn set_leader(&self, id: &str) {
        if let Ok(mut l) = self.leader.lock() {
            *l = id.to_string();
        }
    }

    fn leader_guess(&self) -> String {
        self.leader.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Node `id`'s JSON-RPC address.
    pub(crate) fn addr(&self, id: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.get(id).copied().unwrap_or(0)))
    }

    /// One call on node `id`: its `result`, or why there is none.
    pub(crate) async fn call(
        &self,
        id: &str,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let body = request(method, params);
        let (status, text) = http::post_json(self.addr(id), &body, Some(&self.token), timeout)
            .await
            .map_err(|e| CallError::Net(e.to_string()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|_| CallError::Net(format!("HTTP {status}: {}", text.trim())))?;
        if let Some(e) = v.get("error") {
            return Err(CallError::Rpc {
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or("").to_string(),
                data: e.get("data").cloned().unwrap_or(Value::Null),
            });
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    /// [`Rpc::call`], printing the call and the answer.
    pub(crate) async fn show(&self, ui: &Ui, id: &str, method: &str, params: &Value) -> Result<Value, CallError> {
        let timeout = long_poll(params).unwrap_or(CALL);
        ui.line(format!("→ {id}  {method} {params}"));
        let r = self.call(id, method, params, timeout).await;
        match &r {
            Ok(v) => ui.line(ui.dim(&format!("  ← {v}"))),
            Err(e) => ui.line(ui.yellow(&format!("  ← {e}"))),
        }
        r
    }

    /// Calls `method` on the leader: follows -32020 hints, tries the next node when one
    /// does not answer or is not ready, and (only if `idempotent`) retries a call whose
    /// outcome is unknown. Prints the call that was answered when `ui` is given.
    pub(crate) async fn to_leader(
        &self,
        ui: Option<&Ui>,
        method: &str,
        params: &Value,
        idempotent: bool,
    ) -> Result<(String, Value), CallError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let ids: Vec<String> = self.ports.keys().cloned().collect();
        let timeout = long_poll(params).unwrap_or(CALL);
        let mut hops: Vec<String> = Vec::new();
        loop {
            let id = self.leader_guess();
            let r = self.call(&id, method, params, timeout).await;
            let next = match &r {
                Ok(_) => None,
                Err(CallError::Rpc { code, data, .. }) if *code == i64::from(NOT_LEADER) => Some(
                    data["leader"]
                        .as_str()
                        .filter(|l| self.ports.contains_key(*l) && *l != id)
                        .map(str::to_string),
                ),
                Err(CallError::Rpc { code, .. })
                    if *code == i64::from(UNAVAILABLE)
                        || *code == i64::from(NOT_APPLIED)
                        || *code == i64::from(BACKPRESSURE) =>
                {
                    Some(None)
                }
                Err(CallError::Rpc { code, .. }) if *code == i64::from(UNKNOWN_OUTCOME) && idempotent => Some(None),
                Err(CallError::Net(_)) => Some(None),
                Err(CallError::Rpc { .. }) => None,
            };
            let Some(hint) = next else {
                if let Some(ui) = ui {
                    let via = if hops.is_empty() {
                        String::new()
                    } else {
                        format!("   (after {})", hops.join(", "))
                    };
                    ui.line(format!("→ {id}  {method} {params}{}", ui.dim(&via)));
                    match &r {
                        Ok(v) => ui.line(ui.dim(&format!("  ← {v}"))),
                        Err(e) => ui.line(ui.yellow(&format!("  ← {e}"))),
                    }
                }
                return r.map(|v| (id, v));
            };
            if Instant::now() > deadline {
                return r.map(|v| (id, v));
            }
            if let Err(e) = &r {
                hops.push(match e.code() {
                    Some(c) => format!("{id}: {c}"),
                    None => format!("{id}: no answer"),
                });
            }
            let pos = ids.iter().position(|i| *i == id).unwrap_or(0);
            let pause = hint.is_none();
            let to = hint.unwrap_or_else(|| ids[(pos + 1) % ids.len()].clone());
            // Only move the shared guess if nobody moved it meanwhile.
            if let Ok(mut l) = self.leader.lock() {
                if *l == id {
                    *l = to;
                }
            }
            if pause {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP timeout for a call that long-polls (`timeout_ms` or `wait_ms`).
fn long_poll(params: &Value) -> Option<Duration> {
    let ms = params
        .get("timeout_ms")
        .or_else(|| params.get("wait_ms"))
        .and_then(Value::as_u64)?;
    Some(Duration::from_millis(ms) + CALL)
}

/// The `(key, value)` of each `{"key", "value"}` object in a JSON array (`kv_scan`'s
/// `pairs`, `config_list`'s `entries`); nothing when `v` is not an array.
pub(crate) fn key_values(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["key"].as_str().unwrap_or("").to_string(),
                        e["value"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
