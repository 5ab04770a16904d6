//! The load of `service_load` (and so of `cargo xtask bench service`): closed-loop
//! clients of a real server over HTTP/1.1, each with its own keep-alive connection to
//! the leader, each doing `put` (a 16-byte key of its own, a 100-byte value) or a
//! linearizable `get` of that key, driven by [`super::drive_all`].
//!
//! - **easyraft**: `easyraft-server`'s JSON-RPC on its client port, `POST /`
//!   `kv_put {key, value}` / `kv_get {key}`; the leader is the endpoint whose
//!   `GET /status` says `leader`.
//! - **easyraft-stream**: the same server's binary stream (`GET /v1/stream`, postcard
//!   frames over one WebSocket connection) through `easyraft-client`'s typed `Kv`
//!   ([`easyraft_client::client::Protocol::Stream`]): every [`STREAM_CALLERS`] clients
//!   share one `Client` and so one connection, whose writer puts every call that is
//!   ready into one frame, as an application sharing one client among its tasks does.
//! - **etcd**: etcd's JSON gateway (grpc-gateway), `POST /v3/kv/put` `{key, value}`
//!   and `POST /v3/kv/range` `{key}` with base64 key and value (a range is
//!   linearizable unless `serializable` is set); the leader is the endpoint whose
//!   `POST /v3/maintenance/status` names itself as leader.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use thiserror::Error;

use super::Proposer;
use crate::http1::{Http1, HttpError};

/// Bytes in a key.
pub const KEY_BYTES: usize = 16;
/// Bytes in a value.
pub const VALUE_BYTES: usize = 100;
/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Closed-loop clients that share one `easyraft-client` `Client` (one stream
/// connection) under [`System::EasyraftStream`].
pub const STREAM_CALLERS: usize = 64;

/// The server driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// `easyraft-server`'s kv service over JSON-RPC on HTTP/1.1.
    Easyraft,
    /// `easyraft-server`'s kv service over the binary stream, through `easyraft-client`.
    EasyraftStream,
    /// etcd through its JSON gateway.
    Etcd,
}

/// What each client does in a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Writes its key.
    Put,
    /// Reads its key (linearizable).
    Get,
}

/// Why the load could not run.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// A request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// `easyraft-client` could not be set up or its call failed.
    #[error("easyraft-client: {0}")]
    Client(#[from] easyraft_client::Error),
    /// The server answered, but not with success.
    #[error("{addr} refused {what}: HTTP {status}: {body}")]
    Refused {
        /// The server.
        addr: SocketAddr,
        /// The request.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The answer (its first bytes).
        body: String,
    },
    /// A client's task ended without an answer (it panicked or was cancelled).
    #[error("a client task failed: {0}")]
    Task(String),
    /// No endpoint said it leads within the deadline.
    #[error("no leader among {endpoints:?} within {within:?}: {last}")]
    NoLeader {
        /// The endpoints asked.
        endpoints: Vec<SocketAddr>,
        /// The deadline.
        within: Duration,
        /// The last answer or failure seen.
        last: String,
    },
}

/// Client `i`'s key: 16 bytes, distinct per client.
pub fn key(client: usize) -> String {
    format!("key-{:012}", client % 1_000_000_000_000)
}

/// Client `i`'s value: 100 bytes.
pub fn value(client: usize) -> String {
    format!("{:0>width$}", client, width = VALUE_BYTES)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The path and body of one operation.
fn request(system: System, op: Op, client: usize) -> (&'static str, Vec<u8>) {
    let (k, v) = (key(client), value(client));
    let (path, body) = match (system, op) {
        (System::Easyraft | System::EasyraftStream, Op::Put) => (
            "/",
            json!({"jsonrpc": "2.0", "id": 1, "method": "kv_put", "params": {"key": k, "value": v}}),
        ),
        (System::Easyraft | System::EasyraftStream, Op::Get) => (
            "/",
            json!({"jsonrpc": "2.0", "id": 1, "method": "kv_get", "params": {"key": k}}),
        ),
        (System::Etcd, Op::Put) => ("/v3/kv/put", json!({"key": b64(&k), "value": b64(&v)})),
        (System::Etcd, Op::Get) => ("/v3/kv/range", json!({"key": b64(&k)})),
    };
    (path, body.to_string().into_bytes())
}

/// Whether an answer is a success: HTTP 200 and, for JSON-RPC, a `result`.
fn succeeded(system: System, status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    match system {
        System::Etcd => true,
        System::Easyraft | System::EasyraftStream => {
            serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("result").is_some())
        }
    }
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// One closed-loop client: its connection and its request.
pub struct ServiceClient {
    client: usize,
    op: Op,
    conn: Conn,
}

/// How a [`ServiceClient`] reaches the server.
enum Conn {
    /// Its own keep-alive HTTP/1.1 connection and its request, made once.
    Http {
        http: Http1,
        system: System,
        path: &'static str,
        body: Vec<u8>,
    },
    /// A typed `Kv` over a `Client` it shares with other clients.
    Stream(easyraft_client::services::Kv),
}

impl ServiceClient {
    /// Client `i` of `system` (HTTP: easyraft or etcd) doing `op` against `leader`
    /// (not connected yet).
    pub fn new(system: System, op: Op, leader: SocketAddr, client: usize) -> Self {
        let (path, body) = request(system, op, client);
        ServiceClient {
            client,
            op,
            conn: Conn::Http {
                http: Http1::new(leader, "", REQUEST_TIMEOUT),
                system,
                path,
                body,
            },
        }
    }

    /// Client `i` doing `op` over the binary stream of `shared`.
    pub fn over_stream(shared: &easyraft_client::client::Client, op: Op, client: usize) -> Self {
        ServiceClient {
            client,
            op,
            conn: Conn::Stream(easyraft_client::services::Kv::new(shared.clone())),
        }
    }

    /// Connects and writes the client's key once, so that a `get` finds a value.
    pub async fn prepare(&mut self) -> Result<(), ServiceError> {
        let client = self.client;
        match &mut self.conn {
            Conn::Stream(kv) => {
                kv.put(&key(client), &value(client)).await?;
                Ok(())
            }
            Conn::Http { http, system, .. } => {
                http.connect().await?;
                let (path, body) = request(*system, Op::Put, client);
                let (status, answer) = http.post(path, &body).await?;
                if succeeded(*system, status, &answer) {
                    Ok(())
                } else {
                    Err(ServiceError::Refused {
                        addr: http.addr(),
                        what: "the first put",
                        status,
                        body: excerpt(&answer),
                    })
                }
            }
        }
    }
}

impl Proposer for ServiceClient {
    async fn propose(&mut self) -> bool {
        let outcome = match &mut self.conn {
            Conn::Stream(kv) => {
                let k = key(self.client);
                let r = match self.op {
                    Op::Put => kv.put(&k, &value(self.client)).await.map(drop),
                    Op::Get => kv
                        .get(&k, easyraft_client::services::Read::Linearizable)
                        .await
                        .map(drop),
                };
                r.map_err(|e| e.to_string())
            }
            Conn::Http {
                http,
                system,
                path,
                body,
            } => match http.post(path, body).await {
                Ok((status, answer)) if succeeded(*system, status, &answer) => Ok(()),
                Ok((status, answer)) => Err(format!("HTTP {status}: {}", excerpt(&answer))),
                Err(e) => Err(e.to_string()),
            },
        };
        match outcome {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "refused or failed");
                // Refused (not the leader any more, overloaded) or failed: do not spin on it.
                tokio::time::sleep(Duration::from_millis(10)).await;
                false
            }
        }
    }
}

/// Whether `addr` says it leads.
async fn leads(system: System, addr: SocketAddr) -> Result<bool, ServiceError> {
    let mut http = Http1::new(addr, "", Duration::from_secs(2));
    let (status, body) = match system {
        System::Easyraft | System::EasyraftStream => http.get("/status").await?,
        System::Etcd => http.post("/v3/maintenance/status", b"{}").await?,
    };
    if status != 200 {
        return Err(ServiceError::Refused {
            addr,
            what: "the status request",
            status,
            body: excerpt(&body),
        });
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(match system {
        System::Easyraft | System::EasyraftStream => {
            v["role"].as_str().is_some_and(|r| r.eq_ignore_ascii_case("leader"))
        }
        System::Etcd => {
            let me = &v["header"]["member_id"];
            !me.is_null() && *me == v["leader"]
        }
    })
}

/// The endpoint that leads, asking each in turn until one does (at most `within`).
pub async fn find_leader(
    system: System,
    endpoints: &[SocketAddr],
    within: Duration,
) -> Result<SocketAddr, ServiceError> {
    let deadline = Instant::now() + within;
    let mut last = String::from("nothing asked");
    loop {
        for &addr in endpoints {
            match leads(system, addr).await {
                Ok(true) => return Ok(addr),
                Ok(false) => last = format!("{addr} does not lead"),
                Err(e) => last = e.to_string(),
            }
        }
        if Instant::now() >= deadline {
            return Err(ServiceError::NoLeader {
                endpoints: endpoints.to_vec(),
                within,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `clients` clients connected to the leader, each with its key written once
/// (concurrently; a client that fails its first put fails the whole preparation).
/// Over the stream, every [`STREAM_CALLERS`] clients share one `Client` that knows
/// `endpoints`, the leader first.
pub async fn prepare(
    system: System,
    op: Op,
    leader: SocketAddr,
    endpoints: &[SocketAddr],
    clients: usize,
) -> Result<Vec<ServiceClient>, ServiceError> {
    let mut shared = Vec::new();
    if system == System::EasyraftStream {
        let mut list = vec![leader.to_string()];
        list.extend(endpoints.iter().filter(|&&e| e != leader).map(SocketAddr::to_string));
        let endpoints = easyraft_client::endpoint::Endpoint::parse_list(&list)
            .map_err(|e| ServiceError::Task(format!("bad endpoint: {e}")))?;
        for _ in 0..clients.div_ceil(STREAM_CALLERS) {
            shared.push(easyraft_client::client::Client::new(
                easyraft_client::client::Settings {
                    endpoints: endpoints.clone(),
                    connect_timeout: Duration::from_secs(2),
                    timeout: REQUEST_TIMEOUT,
                    deadline: REQUEST_TIMEOUT,
                    admin_token: None,
                    cacert: None,
                    protocol: easyraft_client::client::Protocol::Stream,
                },
            )?);
        }
    }
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let mut c = match shared.get(i / STREAM_CALLERS) {
                Some(s) => ServiceClient::over_stream(s, op, i),
                None => ServiceClient::new(system, op, leader, i),
            };
            tokio::spawn(async move {
                // The first put may meet a leader still settling in: a few tries.
                let mut tries = 0;
                loop {
                    match c.prepare().await {
                        Ok(()) => return Ok(c),
                        Err(e) if tries >= 20 => return Err(e),
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        })
        .collect();
    let mut ready = Vec::with_capacity(clients);
    for t in tasks {
        match t.await {
            Ok(r) => ready.push(r?),
            Err(e) => return Err(ServiceError::Task(e.to_string())),
        }
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_have_their_sizes_and_differ_per_client() {
        assert_eq!(key(7).len(), KEY_BYTES);
        assert_eq!(key(999_999).len(), KEY_BYTES);
        assert_ne!(key(1), key(2));
        assert_eq!(value(3).len(), VALUE_BYTES);
    }

    #[test]
    fn etcd_requests_carry_base64() {
        let (path, body) = request(System::Etcd, Op::Put, 1);
        assert_eq!(path, "/v3/kv/put");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["key"], b64("key-000000000001"));
        let (path, _) = request(System::Etcd, Op::Get, 1);
        assert_eq!(path, "/v3/kv/range");
    }
}
