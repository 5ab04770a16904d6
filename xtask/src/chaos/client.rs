//! The chaos clients: each sends random puts, gets and cas on a few keys over HTTP
//! JSON-RPC, one connection per request, and records every request as an [`Op`].
//!
//! The outcome of a write is classified with care, since the checker trusts it:
//! - answered: [`Outcome::Ok`];
//! - refused before anything was proposed (the connection was refused, error -32020
//!   "not the leader", -32022 "unavailable", -32024 "backpressure", a malformed
//!   request), or -32023 "not applied" (a leader change replaced the entry, a
//!   leadership transfer refused it):
//!   not applied, so the client may retry on another node within the same op;
//!   [`Outcome::Fail`] if no node took it before the op's deadline;
//! - anything else (a timeout, error -32021 "unknown outcome", a connection lost after
//!   the request was sent, the node stopping, an answer that is not JSON-RPC):
//!   [`Outcome::Unknown`], and never retried (a retry could apply it twice).
//!
//! Reads change nothing: a read without an answer is recorded as failed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::api::{BACKPRESSURE, BAD_REQUEST, NOT_APPLIED, NOT_LEADER, UNAVAILABLE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::rng::Rng;
use crate::http::parse_response;
use easyraft_linearizability::{Call, Op, Outcome, Ret};

/// How long a client waits for one answer (the nodes time out at 3 s).
const CALL: Duration = Duration::from_secs(5);
/// How long one op may keep retrying refused attempts.
const OP_DEADLINE: Duration = Duration::from_secs(6);

/// What the clients share: the nodes, the token, the leader guess, the clock.
pub(crate) struct Shared {
    /// Each node slot's API port (JSON-RPC over HTTP, the kv and admin methods).
    pub(crate) ports: BTreeMap<String, u16>,
    /// The processes, and which slots are members now (membership churn changes it).
    pub(crate) procs: Arc<super::procs::Procs>,
    /// The cluster token.
    pub(crate) token: String,
    /// The run's time zero.
    pub(crate) start: Instant,
    /// Where writes go first.
    pub(crate) leader: Mutex<String>,
    /// Set to stop the clients.
    pub(crate) stop: AtomicBool,
    /// Answered ops so far.
    pub(crate) ok: AtomicUsize,
    /// The clients' gets are stale local reads (see `ChaosOptions::stale_reads`).
    pub(crate) stale_reads: bool,
}

impl Shared {
    /// Microseconds since the run started.
    pub(crate) fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// The members now: the nodes the clients talk to.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.procs.members()
    }

    fn leader_guess(&self) -> String {
        self.leader.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn set_leader(&self, id: &str) {
        if let Ok(mut l) = self.leader.lock() {
            id.clone_into(&mut l);
        }
    }
}

/// One attempt's result.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The JSON-RPC `result`.
    Result(Value),
    /// A JSON-RPC error object.
    Error {
        /// Its code.
        code: i64,
        /// Its data.
        data: Value,
    },
    /// The request was never sent (no connection).
    NotSent,
    /// Sent, but no (usable) answer.
    Lost,
}

/// One JSON-RPC call on `port` with its own connection.
pub(crate) async fn call(port: u16, token: &str, method: &str, params: &Value) -> Reply {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await else {
        return Reply::NotSent;
    };
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let Ok(Ok(raw)) = tokio::time::timeout(CALL, exchange).await else {
        return Reply::Lost;
    };
    let Ok((_, text)) = parse_response(&raw) else {
        return Reply::Lost;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return Reply::Lost;
    };
    if let Some(e) = v.get("error") {
        return Reply::Error {
            code: e["code"].as_i64().unwrap_or(0),
            data: e.get("data").cloned().unwrap_or(Value::Null),
        };
    }
    match v.get("result") {
        Some(r) => Reply::Result(r.clone()),
        None => Reply::Lost,
    }
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// A write: retried on other nodes while refused, until answered or unknown.
async fn write(shared: &Shared, method: &str, params: &Value, ids: &[String]) -> Result<Value, Outcome> {
    let deadline = Instant::now() + OP_DEADLINE;
    let mut target = shared.leader_guess();
    let mut next = 0;
    loop {
        let port = shared.ports.get(&target).copied().unwrap_or(0);
        let mut hint = None;
        match call(port, &shared.token, method, params).await {
            Reply::Result(v) => {
                shared.set_leader(&target);
                return Ok(v);
            }
            Reply::NotSent => {}
            Reply::Error { code, data, .. } if code == i64::from(NOT_LEADER) => {
                hint = data["leader"]
                    .as_str()
                    .filter(|l| shared.ports.contains_key(*l))
                    .map(str::to_string);
            }
            Reply::Error { code, .. }
                if code == i64::from(UNAVAILABLE)
                    || code == i64::from(NOT_APPLIED)
                    || code == i64::from(BACKPRESSURE) => {}
            Reply::Error { code, .. } if code == i64::from(BAD_REQUEST) => return Err(Outcome::Fail),
            Reply::Error { .. } | Reply::Lost => return Err(Outcome::Unknown),
        }
        if Instant::now() >= deadline || shared.stop.load(Ordering::Relaxed) {
            return Err(Outcome::Fail);
        }
        target = match hint {
            Some(h) if h != target => h,
            _ => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                next += 1;
                ids.get(next % ids.len().max(1)).cloned().unwrap_or_default()
            }
        };
        shared.set_leader(&target);
    }
}

/// Reads `key` once on node `id`.
pub(crate) async fn get(shared: &Shared, id: &str, key: &str) -> Option<Option<String>> {
    read(shared, id, key, false).await
}

/// `kv_get` on node `id`: linearizable, or a stale local read if `stale`.
async fn read(shared: &Shared, id: &str, key: &str, stale: bool) -> Option<Option<String>> {
    let port = shared.ports.get(id).copied().unwrap_or(0);
    match call(port, &shared.token, "kv_get", &json!({ "key": key, "stale": stale })).await {
        Reply::Result(v) => Some(opt_str(&v["value"])),
        _ => None,
    }
}

/// Client `me`: random ops on `keys` keys until told to stop.
pub(crate) async fn run(me: usize, shared: Arc<Shared>, seed: u64, keys: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ (me as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut history = Vec::new();
    let mut n = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let ids = shared.ids();
        let key = format!("k{}", rng.below(keys));
        let unique = format!("c{me}-{n}");
        let call = match rng.below(10) {
            0..=3 => Call::Get,
            4..=7 => Call::Put { value: unique },
            _ => Call::Cas {
                expected: seen.get(&key).cloned().flatten(),
                new: unique,
            },
        };
        let invoke = shared.now();
        let outcome = match &call {
            Call::Get => {
                let id = rng.pick(&ids).cloned().unwrap_or_default();
                match read(&shared, &id, &key, shared.stale_reads).await {
                    Some(value) => {
                        seen.insert(key.clone(), value.clone());
                        Outcome::Ok {
                            complete: shared.now(),
                            ret: Ret::Get { value },
                        }
                    }
                    None => Outcome::Fail,
                }
            }
            Call::Put { value } => match write(&shared, "kv_put", &json!({"key": key, "value": value}), &ids).await {
                Ok(v) => {
                    let previous = opt_str(&v["previous"]);
                    seen.insert(key.clone(), Some(value.clone()));
                    Outcome::Ok {
                        complete: shared.now(),
                        ret: Ret::Put { previous },
                    }
                }
                Err(o) => o,
            },
            Call::Cas { expected, new } => {
                let params = json!({"key": key, "expected": expected, "new": new});
                match write(&shared, "kv_cas", &params, &ids).await {
                    // An answer without `ok` is not one the checker can trust.
                    Ok(v) if !v["ok"].is_boolean() => Outcome::Unknown,
                    Ok(v) => {
                        let ok = v["ok"].as_bool().unwrap_or(false);
                        let previous = opt_str(&v["previous"]);
                        seen.insert(key.clone(), if ok { Some(new.clone()) } else { previous.clone() });
                        Outcome::Ok {
                            complete: shared.now(),
                            ret: Ret::Cas { ok, previous },
                        }
                    }
                    Err(o) => o,
                }
            }
        };
        match outcome {
            Outcome::Ok { .. } => {
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            // Do not hammer a cluster that is electing.
            _ => tokio::time::sleep(Duration::from_millis(rng.range(20, 100))).await,
        }
        history.push(Op {
            client: me,
            key,
            call,
            invoke,
            outcome,
            final_read: false,
        });
    }
    history
}
