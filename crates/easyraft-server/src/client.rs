//! Calls from this server to other members' client ports: JSON-RPC that follows
//! not-leader hints (join, leave, registration) and `GET /status` (admin_status), over
//! easyraft-client's HTTP client, plain or `https://` (when the cluster's client ports
//! serve TLS, `[client_tls]`).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use easyraft_client::client::{parse_answer, snippet, Parsed};
use easyraft_client::endpoint::Endpoint;
use easyraft_client::http::HttpClient;
use hyper::Method;
use serde_json::{json, Value};
use tracing::debug;

use crate::error::ServerError;
use crate::rpc_codes::{NOT_APPLIED, NOT_LEADER, UNAVAILABLE};

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `GET /status` may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Reaches other members' client ports.
#[derive(Clone)]
pub struct Caller {
    http: HttpClient,
    /// Addresses without a scheme are `https://` (the cluster's client ports serve TLS).
    tls: bool,
}

impl Caller {
    /// Plain HTTP, or `https://` trusting the CA certificates (PEM) in `ca`.
    pub fn new(ca: Option<&Path>) -> Result<Caller, String> {
        let http = HttpClient::new(Duration::from_secs(5), ca)?;
        Ok(Caller {
            http,
            tls: ca.is_some(),
        })
    }

    fn endpoint(&self, address: &str) -> Result<Endpoint, String> {
        let like = Endpoint {
            host: String::new(),
            port: 0,
            tls: self.tls,
        };
        Endpoint::parse_like(address, &like)
    }

    /// Calls `method` on the member at `address` (`host:port` or a URL) with a
    /// Bearer `token`.
    pub async fn call(
        &self,
        address: &str,
        method: &str,
        params: &Value,
        token: Option<&str>,
    ) -> Result<Value, ServerError> {
        let fail = |reason: String, code: Option<i32>, data: Option<Value>| ServerError::Call {
            method: method.to_string(),
            address: address.to_string(),
            reason,
            code,
            data,
        };
        let ep = self.endpoint(address).map_err(|e| fail(e, None, None))?;
        let params = match params {
            Value::Null => json!({}),
            p => p.clone(),
        };
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let body = Bytes::from(body.to_string());
        let answer = self
            .http
            .exchange(&ep, Method::POST, "/", token, body, CALL_TIMEOUT)
            .await
            .map_err(|e| fail(e.to_string(), None, None))?;
        match parse_answer(&answer.body) {
            Some(Parsed::Result(v)) => Ok(v),
            Some(Parsed::Error { code, message, data }) => {
                let code = i32::try_from(code).ok();
                let shown = code.map_or_else(|| "?".to_string(), |c| c.to_string());
                Err(fail(format!("error {shown}: {message}"), code, data))
            }
            None => Err(fail(
                format!("HTTP {}: {}", answer.status, snippet(&answer.body)),
                None,
                None,
            )),
        }
    }

    /// Calls `method` on the leader, starting at `address`: follows not-leader hints
    /// and retries while the cluster is unavailable or electing, or the hinted leader
    /// cannot be reached, until `deadline`. Callers' methods must be safe to send
    /// twice (a lost answer is retried).
    pub async fn call_leader(
        &self,
        address: &str,
        method: &str,
        params: &Value,
        token: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<Value, ServerError> {
        let mut at = address.to_string();
        loop {
            match self.call(&at, method, params, token).await {
                Err(ServerError::Call {
                    code: Some(code), data, ..
                }) if code == NOT_LEADER && tokio::time::Instant::now() < deadline => {
                    match data.as_ref().and_then(|d| d["address"].as_str()) {
                        Some(next) => at = next.to_string(),
                        None => at = address.to_string(),
                    }
                }
                Err(ServerError::Call { code: Some(code), .. })
                    if (code == UNAVAILABLE || code == NOT_APPLIED) && tokio::time::Instant::now() < deadline => {}
                // A hint can name a leader that just died: start over where we began
                // (which then names the next leader). The starting address itself
                // unreachable is the caller's to hear at once.
                Err(ServerError::Call { code: None, reason, .. })
                    if at != address && tokio::time::Instant::now() < deadline =>
                {
                    debug!(%at, %reason, "the hinted leader is not reachable; asking {address} again");
                    at = address.to_string();
                }
                other => return other,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` on `address`: the status code and the body as JSON.
    pub async fn get_json(&self, address: &str, path: &str) -> Result<(u16, Value), String> {
        let ep = self.endpoint(address)?;
        let answer = self
            .http
            .exchange(&ep, Method::GET, path, None, Bytes::new(), STATUS_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let json = serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON: {e}"))?;
        Ok((answer.status, json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers each connection with the next of `bodies` (HTTP 200, JSON-RPC), then closes.
    async fn member(bodies: Vec<String>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for body in bodies {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 64 << 10];
                let mut got = Vec::new();
                // The request's head and its (small) body.
                while !String::from_utf8_lossy(&got).contains("\"jsonrpc\"") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_hint_naming_a_dead_leader_is_dropped_and_the_first_member_asked_again() {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let not_leader = json!({"jsonrpc": "2.0", "id": 1, "error": {
            "code": NOT_LEADER, "message": "not the leader",
            "data": {"leader": "n1", "address": dead}}});
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {"index": 7}});
        let at = member(vec![not_leader.to_string(), ok.to_string()]).await;
        let caller = Caller::new(None).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let got = caller
            .call_leader(&at, "admin_promote", &json!({"id": "n4"}), None, deadline)
            .await;
        assert_eq!(got.unwrap()["index"], 7);
        // The first member itself unreachable is an error at once, not a retry loop.
        let err = caller
            .call_leader(&dead, "admin_promote", &json!({}), None, deadline)
            .await;
        assert!(matches!(err, Err(ServerError::Call { code: None, .. })), "{err:?}");
    }
}
