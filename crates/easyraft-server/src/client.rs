//! Calls from this server to other members' client ports: JSON-RPC that follows
//! not-leader hints (join, leave, registration) and `GET /status` (admin_status).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use jsonrpsee::core::client::{ClientT, Error as RpcError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClientBuilder};
use serde_json::Value;

use crate::error::ServerError;
use crate::rpc_codes::{NOT_APPLIED, NOT_LEADER, UNAVAILABLE};

/// Calls `method` on the member at `address` (`host:port`) with a Bearer `token`.
pub async fn call(address: &str, method: &str, params: &Value, token: Option<&str>) -> Result<Value, ServerError> {
    let fail = |reason: String, code: Option<i32>, data: Option<Value>| ServerError::Call {
        method: method.to_string(),
        address: address.to_string(),
        reason,
        code,
        data,
    };
    let mut headers = HeaderMap::new();
    if let Some(t) = token {
        let v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| fail(e.to_string(), None, None))?;
        headers.insert("authorization", v);
    }
    let client = HttpClientBuilder::default()
        .set_headers(headers)
        .request_timeout(Duration::from_secs(30))
        .build(format!("http://{address}"))
        .map_err(|e| fail(e.to_string(), None, None))?;
    let mut p = ObjectParams::new();
    if let Value::Object(map) = params {
        for (k, v) in map {
            p.insert(k, v).map_err(|e| fail(e.to_string(), None, None))?;
        }
    }
    match client.request::<Value, _>(method, p).await {
        Ok(v) => Ok(v),
        Err(RpcError::Call(e)) => {
            let data = e.data().and_then(|d| serde_json::from_str(d.get()).ok());
            Err(fail(
                format!("error {}: {}", e.code(), e.message()),
                Some(e.code()),
                data,
            ))
        }
        Err(e) => Err(fail(e.to_string(), None, None)),
    }
}

/// Calls `method` on the leader, starting at `address`: follows not-leader hints and
/// retries while the cluster is unavailable or electing, until `deadline`.
pub async fn call_leader(
    address: &str,
    method: &str,
    params: &Value,
    token: Option<&str>,
    deadline: tokio::time::Instant,
) -> Result<Value, ServerError> {
    let mut at = address.to_string();
    loop {
        match call(&at, method, params, token).await {
            Err(ServerError::Call {
                code: Some(code), data, ..
            }) if code == NOT_LEADER && tokio::time::Instant::now() < deadline => {
                if let Some(next) = data.as_ref().and_then(|d| d["address"].as_str()) {
                    at = next.to_string();
                } else {
                    at = address.to_string();
                }
            }
            Err(ServerError::Call { code: Some(code), .. })
                if (code == UNAVAILABLE || code == NOT_APPLIED) && tokio::time::Instant::now() < deadline => {}
            other => return other,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` on `address`: the status code and the body as JSON.
pub async fn get_json(address: &str, path: &str) -> Result<(u16, Value), String> {
    let work = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header("host", address)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        Ok((status, json))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .map_err(|_| "no answer within 5s".to_string())?
}
