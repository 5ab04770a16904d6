//! Writes in a client session (docs/server-api.md, "Sessions"): each write carries
//! `session: {id, seq, acked}`; the cluster applies each (id, seq) once and keeps its
//! answer until the client acknowledges it (`acked` past it), so the client may send a
//! write again after any failure and gets the first attempt's answer.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::call::{Call, Reply};
use crate::codes::SESSION_EXPIRED;
use crate::error::Error;
use crate::policy::CallKind;

/// What a session needs of the client: `call` made with the retry policy, setting
/// `maybe_applied` when an attempt may have reached the state machine (no answer, or
/// an unknown outcome).
pub(crate) trait Attempts {
    /// Makes `call`, retrying and redirecting per [`crate::policy::decide`].
    async fn attempts(&self, call: &Call, maybe_applied: &mut bool) -> Result<Reply, Error>;
}

/// The client's side of its session: the id, the next sequence number and the writes
/// sent and not yet answered.
#[derive(Debug, Default)]
pub(crate) struct SessionCell {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    id: Option<u64>,
    next: u64,
    outstanding: BTreeSet<u64>,
}

/// A write's place in the session.
struct Stamp {
    id: u64,
    seq: u64,
    acked: u64,
}

impl SessionCell {
    pub(crate) async fn id(&self) -> Option<u64> {
        self.state.lock().await.id
    }

    /// Numbers a new write, opening a session first if none is open (with the
    /// write's token: `admin`).
    async fn stamp(&self, client: &impl Attempts, admin: bool) -> Result<Stamp, Error> {
        let mut s = self.state.lock().await;
        let id = match s.id {
            Some(id) => id,
            None => {
                // Opening is retried like an idempotent write: a lost answer leaves
                // an unused session behind, which expires.
                let mut open = Call::new("session_open", CallKind::IdempotentWrite, json!({}));
                open.admin = admin;
                let reply = client.attempts(&open, &mut false).await?;
                let id = reply
                    .result
                    .get("session")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| Error::Rpc {
                        endpoint: reply.endpoint.to_string(),
                        method: "session_open".into(),
                        code: i64::from(crate::codes::INVALID_REQUEST),
                        message: format!("the answer has no session id: {}", reply.result),
                        data: None,
                    })?;
                tracing::debug!(session = id, "session opened");
                *s = State {
                    id: Some(id),
                    next: 1,
                    outstanding: BTreeSet::new(),
                };
                id
            }
        };
        let seq = s.next;
        s.next = s.next.saturating_add(1);
        s.outstanding.insert(seq);
        let acked = s.outstanding.first().copied().unwrap_or(seq);
        Ok(Stamp { id, seq, acked })
    }

    /// The write `seq` will not be sent again (answered, or given up): its answer may go.
    async fn done(&self, id: u64, seq: u64) {
        let mut s = self.state.lock().await;
        if s.id == Some(id) {
            s.outstanding.remove(&seq);
        }
    }

    /// Session `id` is gone on the cluster's side: the next write opens another.
    async fn forget(&self, id: u64) {
        let mut s = self.state.lock().await;
        if s.id == Some(id) {
            *s = State::default();
        }
    }
}

/// Makes the write `call` in the session of `cell`.
pub(crate) async fn call(client: &impl Attempts, cell: &SessionCell, call: &Call) -> Result<Reply, Error> {
    let mut reopened = false;
    loop {
        let stamp = cell.stamp(client, call.admin).await?;
        let mut params = match &call.params {
            Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        params.insert(
            "session".into(),
            json!({ "id": stamp.id, "seq": stamp.seq, "acked": stamp.acked }),
        );
        let stamped = Call {
            params: Value::Object(params),
            kind: CallKind::IdempotentWrite,
            ..call.clone()
        };
        let mut maybe_applied = false;
        let r = client.attempts(&stamped, &mut maybe_applied).await;
        cell.done(stamp.id, stamp.seq).await;
        match r {
            Err(e) if e.rpc_code() == Some(i64::from(SESSION_EXPIRED)) => {
                cell.forget(stamp.id).await;
                if maybe_applied || reopened {
                    // An earlier attempt may have been applied under the old session.
                    return Err(unknown(
                        call,
                        format!("session {} expired while the write was retried: {e}", stamp.id),
                    ));
                }
                // Nothing was applied: send it once more in a new session.
                reopened = true;
            }
            // Given up with an attempt that may have been applied: say so, whatever
            // the last attempt's error was.
            Err(e) if maybe_applied && !matches!(e, Error::UnknownOutcome { .. }) => {
                return Err(unknown(
                    call,
                    format!("an attempt may have been applied, and none was answered: {e}"),
                ));
            }
            other => return other,
        }
    }
}

/// The outcome of the write `call` is unknown, for `reason` (it went to several
/// endpoints: none is named).
fn unknown(call: &Call, reason: String) -> Error {
    Error::UnknownOutcome {
        endpoint: String::new(),
        method: call.method.to_string(),
        reason,
    }
}
