//! The chaos clients: each sends random puts, gets and cas on a few keys over HTTP
//! JSON-RPC and records every request as an [`Op`].
//!
//! Writes go through easyraft-client in a client session (one per chaos client): the
//! client follows the leader and retries a write after anything — a refusal, a lost
//! answer, a leader killed mid-write — with the same session and sequence number, and
//! the cluster applies it once and answers every retry as the first attempt. So a
//! write's outcome, which the checker trusts, is:
//! - answered: [`Outcome::Ok`], however many attempts it took (applied once);
//! - given up at the op's deadline after an attempt that may have reached the state
//!   machine (no answer, error -32021): [`Outcome::Unknown`];
//! - given up otherwise (every attempt refused before anything was proposed):
//!   [`Outcome::Fail`].
//!
//! Reads change nothing: each goes to one node (a random member, to exercise reads
//! on followers) with its own connection; a read without an answer is recorded as
//! failed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft_client::client::{Call as ClientCall, Client, Settings};
use easyraft_client::endpoint::Endpoint;
use easyraft_client::policy::CallKind;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::parse_response;
use crate::rng::Rng;
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
}

/// One JSON-RPC call on `port` with its own connection: the `result`, or `None` for
/// anything else (no connection, no answer, an error answer).
pub(crate) async fn call(port: u16, token: &str, method: &str, params: &Value) -> Option<Value> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await else {
        return None;
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
        return None;
    };
    let Ok((_, text)) = parse_response(&raw) else {
        return None;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return None;
    };
    v.get("result").cloned()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Client `me`'s connection to the cluster for writes: easyraft-client over every
/// node's API port, in a client session, so a write is retried (through lost
/// answers, leader kills, partitions) until answered or the op's deadline, and the
/// cluster applies it once.
pub(crate) fn writer(shared: &Shared) -> Result<Client, easyraft_client::Error> {
    let endpoints = shared
        .ports
        .values()
        .map(|p| Endpoint {
            host: "127.0.0.1".into(),
            port: *p,
            tls: false,
        })
        .collect();
    Ok(Client::new(Settings {
        endpoints,
        connect_timeout: Duration::from_secs(1),
        timeout: CALL,
        deadline: OP_DEADLINE,
        admin_token: Some(shared.token.clone()),
        cacert: None,
        protocol: easyraft_client::client::Protocol::Http,
    })?
    .with_sessions())
}

/// A write in the client's session: its answer, or how it ended. Only a write that may
/// have reached a state machine and was never answered is [`Outcome::Unknown`]
/// (easyraft-client says so with [`easyraft_client::Error::UnknownOutcome`]); every
/// other failure left nothing applied.
async fn write(client: &Client, method: &'static str, params: Value) -> Result<Value, Outcome> {
    let call = ClientCall::new(method, CallKind::Write, params).admin();
    match client.call(&call).await {
        Ok(reply) => Ok(reply.result),
        Err(easyraft_client::Error::UnknownOutcome { .. }) => Err(Outcome::Unknown),
        Err(e) => {
            tracing::debug!(error = %e, "write not applied");
            Err(Outcome::Fail)
        }
    }
}

/// Reads `key` once on node `id`.
pub(crate) async fn get(shared: &Shared, id: &str, key: &str) -> Option<Option<String>> {
    read(shared, id, key, false).await
}

/// `kv_get` on node `id`: linearizable, or a stale local read if `stale`.
async fn read(shared: &Shared, id: &str, key: &str, stale: bool) -> Option<Option<String>> {
    let port = shared.ports.get(id).copied().unwrap_or(0);
    let v = call(port, &shared.token, "kv_get", &json!({ "key": key, "stale": stale })).await?;
    Some(opt_str(&v["value"]))
}

/// Client `me`: random ops on `keys` keys until told to stop.
pub(crate) async fn run(me: usize, shared: Arc<Shared>, client: Client, seed: u64, keys: usize) -> Vec<Op> {
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
            Call::Put { value } => match write(&client, "kv_put", json!({"key": key, "value": value})).await {
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
                match write(&client, "kv_cas", params).await {
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
