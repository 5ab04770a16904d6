//! A JSON-RPC client over HTTP, as any user's library would be, that follows the
//! services' not-leader redirects.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as RpcError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use serde_json::Value;

pub(crate) fn client(port: u16) -> HttpClient {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_static("Bearer local-token"));
    HttpClientBuilder::default()
        .set_headers(h)
        .request_timeout(Duration::from_secs(10))
        .build(format!("http://127.0.0.1:{port}"))
        .unwrap()
}

pub(crate) fn params(pairs: &[(&str, Value)]) -> ObjectParams {
    let mut p = ObjectParams::new();
    for (k, v) in pairs {
        p.insert(k, v.clone()).unwrap();
    }
    p
}

/// Calls `method` on `port`; on a not-leader error, retries on the hinted leader, and
/// on a node that does not answer, on the next one.
pub(crate) async fn call(
    ports: &BTreeMap<String, u16>,
    mut port: u16,
    method: &str,
    p: &[(&str, Value)],
) -> Result<Value, RpcError> {
    let all: Vec<u16> = ports.values().copied().collect();
    for attempt in 0..100 {
        match client(port).request::<Value, _>(method, params(p)).await {
            Err(RpcError::Transport(_)) => {
                port = all[attempt % all.len()];
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(RpcError::Call(e)) if e.code() == examples::api::NOT_LEADER => {
                let data: Value = e
                    .data()
                    .map(|d| serde_json::from_str(d.get()).unwrap())
                    .unwrap_or_default();
                port = data["leader"]
                    .as_str()
                    .and_then(|l| ports.get(l))
                    .copied()
                    .unwrap_or(port);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(RpcError::Call(e))
                if e.code() == examples::api::UNAVAILABLE
                    || e.code() == examples::api::NOT_APPLIED
                    || e.code() == examples::api::BACKPRESSURE =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
    Err(RpcError::Custom("no leader found".into()))
}
