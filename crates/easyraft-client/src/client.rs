//! A JSON-RPC client over a list of endpoints that applies [`policy::decide`] after
//! each attempt: it tries the endpoints in turn, follows leader hints and retries what
//! the contract says may be retried, within a deadline.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::Method;
use serde_json::Value;

pub use crate::call::{parse_answer, snippet, Call, Parsed, Reply};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::http::{HttpClient, HttpError};
use crate::policy::{self, CallKind, Decision, Failure, Outcome, Tries};
use crate::session::{self, Attempts, SessionCell};
use crate::stream::StreamOutcome;
use crate::stream_client::StreamPool;

/// How to talk to the cluster.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Members' client addresses, tried in this order.
    pub endpoints: Vec<Endpoint>,
    /// The TCP connect timeout.
    pub connect_timeout: Duration,
    /// The timeout of one call to one endpoint.
    pub timeout: Duration,
    /// How long all the tries of one command may take.
    pub deadline: Duration,
    /// The admin token.
    pub admin_token: Option<String>,
    /// The CA certificates (PEM) that `https://` endpoints' certificates must chain to.
    pub cacert: Option<std::path::PathBuf>,
    /// How calls travel: one HTTP exchange each, or over a shared binary stream.
    pub protocol: Protocol,
}

/// How a [`Client`] sends its calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// JSON-RPC over HTTP/1.1: one `POST /` per attempt, on a fresh connection.
    #[default]
    Http,
    /// The binary stream (`GET /v1/stream`, [`crate::stream`]): every attempt to an
    /// endpoint goes over one multiplexed WebSocket connection to it, shared by all
    /// the client's concurrent calls (and its clones).
    Stream,
}

/// The client. Clones share connections and, with [`Client::with_sessions`], the
/// session.
#[derive(Clone, Debug)]
pub struct Client {
    /// The settings.
    pub settings: Settings,
    /// The HTTP layer.
    pub http: HttpClient,
    /// The client session that writes run in (`None`: writes carry no session).
    session: Option<std::sync::Arc<SessionCell>>,
    /// The stream connections ([`Protocol::Stream`]).
    stream: std::sync::Arc<StreamPool>,
}

/// What one attempt brought back.
enum Exchanged {
    /// A JSON-RPC answer.
    Parsed(Parsed),
    /// An HTTP answer that is not one.
    Other(crate::http::Answer),
}

impl Client {
    /// A client with these settings; a usage error if an `https://` endpoint has no
    /// `cacert`, or `cacert` cannot be read.
    pub fn new(settings: Settings) -> Result<Client, Error> {
        let http = HttpClient::new(settings.connect_timeout, settings.cacert.as_deref()).map_err(Error::Usage)?;
        if let Some(e) = settings.endpoints.iter().find(|e| e.tls && !http.has_tls()) {
            return Err(Error::Usage(format!(
                "{e}: https:// endpoints need `cacert` (the CA that signed the servers' certificates)"
            )));
        }
        Ok(Client {
            settings,
            http,
            session: None,
            stream: std::sync::Arc::default(),
        })
    }

    /// The same client (connections, TLS configuration, session) with other
    /// `settings`: for one call to one member, say, or another deadline.
    pub fn with_settings(&self, settings: Settings) -> Client {
        Client {
            settings,
            http: self.http.clone(),
            session: self.session.clone(),
            stream: self.stream.clone(),
        }
    }

    /// How many calls wait for an answer on the client's stream connections (none once
    /// every call returned, whatever became of it).
    pub fn stream_pending(&self) -> usize {
        self.stream.pending()
    }

    /// One attempt of `call` to `ep`, over the settings' protocol.
    async fn exchange(
        &self,
        ep: &Endpoint,
        call: &Call,
        body: &Bytes,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Exchanged, HttpError> {
        match self.settings.protocol {
            Protocol::Http => {
                let answer = self
                    .http
                    .exchange(ep, Method::POST, "/", token, body.clone(), timeout)
                    .await?;
                Ok(match parse_answer(&answer.body) {
                    Some(parsed) => Exchanged::Parsed(parsed),
                    None => Exchanged::Other(answer),
                })
            }
            Protocol::Stream => {
                let params = call.params.to_string();
                let outcome = self
                    .stream
                    .call(&self.http, ep, token, call.method, params, timeout)
                    .await?;
                Ok(Exchanged::Parsed(match outcome {
                    StreamOutcome::Ok(text) => Parsed::Result(
                        serde_json::from_str(&text)
                            .map_err(|e| HttpError::Exchange(format!("the stream's result is not JSON: {e}")))?,
                    ),
                    StreamOutcome::Err { code, message, data } => Parsed::Error {
                        code,
                        message,
                        data: data
                            .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                            .filter(|d| !d.is_null()),
                    },
                }))
            }
        }
    }

    /// The same client with exactly-once writes: every write ([`CallKind::Write`] and
    /// [`CallKind::IdempotentWrite`]) runs in a client session (opened on the first write, shared by clones), so it is retried
    /// like an idempotent write — after a lost answer, a leader change, a timeout —
    /// and the cluster applies it once and answers every retry as the first attempt.
    /// A session expires after two minutes without a write; the next write opens a
    /// new one. At most 1,024 writes may be in flight per session.
    pub fn with_sessions(mut self) -> Client {
        self.session = Some(std::sync::Arc::default());
        self
    }

    /// The id of the session writes run in, once one is open.
    pub async fn session_id(&self) -> Option<u64> {
        match &self.session {
            Some(cell) => cell.id().await,
            None => None,
        }
    }

    /// Makes `call`, retrying and redirecting per [`policy::decide`]; a write of a
    /// client [`with_sessions`](Client::with_sessions) runs in its session (and so is
    /// retried as safely as a read).
    pub async fn call(&self, call: &Call) -> Result<Reply, Error> {
        match (&self.session, call.kind) {
            // Idempotent writes too: retried without a session, a `config_set` would
            // add a second version and a `kv_put` answer the second application.
            (Some(cell), CallKind::Write | CallKind::IdempotentWrite) => session::call(self, cell, call).await,
            _ => self.attempts(call, &mut false).await,
        }
    }
}

impl Attempts for Client {
    /// Makes `call` with the retry policy; `maybe_applied` is set when an attempt may
    /// have reached the state machine (no answer, or an unknown outcome).
    async fn attempts(&self, call: &Call, maybe_applied: &mut bool) -> Result<Reply, Error> {
        let s = &self.settings;
        let start = tokio::time::Instant::now();
        let deadline = start + s.deadline + call.extra_time;
        let timeout = s.timeout + call.extra_time;
        let body = Bytes::from(call.body().to_string());
        let token = if call.admin { s.admin_token.as_deref() } else { None };
        let n = s.endpoints.len();
        let Some(first) = s.endpoints.first() else {
            return Err(Error::Usage("no endpoints given".into()));
        };
        let mut idx = 0usize;
        let mut current = first.clone();
        let mut tries = Tries {
            endpoints: n as u32,
            ..Tries::default()
        };
        let mut attempts = 0u32;
        // The last reason each endpoint could not be connected to (for "unreachable").
        let mut unreachable: Vec<(String, String)> = Vec::new();
        loop {
            attempts += 1;
            tracing::debug!(endpoint = %current, method = call.method, attempt = attempts, "calling");
            let exchanged = self.exchange(&current, call, &body, token, timeout).await;
            let (outcome, error) = match exchanged {
                Err(HttpError::Connect(reason)) => {
                    tracing::debug!(endpoint = %current, %reason, "cannot connect");
                    unreachable.retain(|(e, _)| *e != current.to_string());
                    unreachable.push((current.to_string(), reason.clone()));
                    (Outcome::NotSent, None)
                }
                Err(HttpError::Exchange(reason)) => {
                    tracing::debug!(endpoint = %current, %reason, "no answer");
                    *maybe_applied = true;
                    let e = Error::UnknownOutcome {
                        endpoint: current.to_string(),
                        method: call.method.to_string(),
                        reason,
                    };
                    (Outcome::NoAnswer, Some(e))
                }
                Ok(answer) => match answer {
                    Exchanged::Parsed(Parsed::Result(result)) => {
                        return Ok(Reply {
                            endpoint: current,
                            result,
                        })
                    }
                    Exchanged::Parsed(Parsed::Error { code, message, data }) => {
                        tracing::debug!(endpoint = %current, code, %message, "error answer");
                        if code == i64::from(crate::codes::UNKNOWN_OUTCOME) {
                            *maybe_applied = true;
                        }
                        let leader_address = data
                            .as_ref()
                            .and_then(|d| d.get("address"))
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        let e = Error::Rpc {
                            endpoint: current.to_string(),
                            method: call.method.to_string(),
                            code,
                            message,
                            data,
                        };
                        (Outcome::Error { code, leader_address }, Some(e))
                    }
                    Exchanged::Other(answer) => {
                        // Not the server's JSON-RPC answer (a proxy's?): the request
                        // may have reached it.
                        *maybe_applied = true;
                        let e = Error::Http {
                            endpoint: current.to_string(),
                            what: call.method.to_string(),
                            status: answer.status,
                            body: snippet(&answer.body),
                        };
                        (Outcome::Http(answer.status), Some(e))
                    }
                },
            };
            if outcome == Outcome::NotSent {
                tries.not_sent += 1;
            } else {
                tries.not_sent = 0;
            }
            let decision = policy::decide(call.kind, &outcome, tries);
            tracing::debug!(?outcome, ?decision, "policy");
            let give_up = |e: Option<Error>, unreachable: &[(String, String)]| {
                e.unwrap_or_else(|| Error::Unreachable {
                    attempts: unreachable.to_vec(),
                })
            };
            let pause = match decision {
                Decision::Done => Duration::ZERO,
                Decision::Fail(Failure::Unreachable) => {
                    return Err(Error::Unreachable { attempts: unreachable });
                }
                Decision::Fail(Failure::Refused | Failure::UnknownOutcome) => {
                    return Err(give_up(error, &unreachable));
                }
                Decision::Redirect(address) => {
                    tries.redirects += 1;
                    match Endpoint::parse_like(&address, &current) {
                        Ok(leader) => {
                            tracing::debug!(from = %current, to = %leader, "following the leader hint");
                            current = leader;
                            continue;
                        }
                        Err(reason) => {
                            tracing::debug!(%reason, "ignoring a bad leader hint");
                            idx = (idx + 1) % n;
                            current = s.endpoints[idx].clone();
                            policy::backoff(tries.retries)
                        }
                    }
                }
                Decision::Next(pause) => {
                    idx = (idx + 1) % n;
                    current = s.endpoints[idx].clone();
                    pause
                }
                Decision::Same(pause) => pause,
            };
            if !matches!(outcome, Outcome::NotSent) {
                tries.retries += 1;
                tries.redirects = 0;
            }
            let now = tokio::time::Instant::now();
            if now + pause >= deadline {
                let last = give_up(error, &unreachable);
                return Err(Error::Deadline {
                    elapsed_ms: now.duration_since(start).as_millis(),
                    tries: attempts,
                    last: Box::new(last),
                });
            }
            tokio::time::sleep(pause).await;
        }
    }
}
