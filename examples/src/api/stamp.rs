//! Where a write stands in its client's session: the `session` param of every write
//! ([`Stamp`]), and a session's refusal as a JSON-RPC error.

use easyraft::cluster::sessions::{SessionCommand, SessionError, SessionId};
use easyraft_client::codes::{BACKPRESSURE, BAD_REQUEST, SESSION_EXPIRED};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde::Deserialize;

use super::params::bad;

/// Where a write stands in its client's session: the optional `session` param of
/// every write (`{"id": 17, "seq": 4, "acked": 3}`, docs/server-api.md). A write sent
/// again with the same stamp is applied once and answered as the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// The session (what `session_open` answered).
    pub id: SessionId,
    /// This write's number in the session, from 1.
    pub seq: u64,
    /// Every write of the session below this number was answered to the client.
    #[serde(default)]
    pub acked: u64,
}

impl Stamp {
    /// The `session` param of `params`: `None` when absent or `null`; a `-32602` error
    /// when malformed (`seq` 0, `acked` past `seq`).
    pub fn of(params: &serde_json::Value) -> Result<Option<Stamp>, ErrorObjectOwned> {
        let stamp = match params.get("session") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(v) => Stamp::deserialize(v)
                .map_err(|e| bad(format!("`session` must be {{\"id\", \"seq\", \"acked\"}}: {e}")))?,
        };
        if stamp.seq == 0 || stamp.acked > stamp.seq {
            return Err(bad("`session`: `seq` starts at 1 and `acked` is at most `seq`"));
        }
        Ok(Some(stamp))
    }

    /// The session command that carries `command` with this stamp, at `at_ms`.
    pub fn command<C>(self, command: C, at_ms: u64) -> SessionCommand<C> {
        SessionCommand::Apply {
            session: self.id,
            seq: self.seq,
            acked: self.acked,
            at_ms,
            command,
        }
    }
}

/// Maps a session's refusal to a JSON-RPC error (nothing was applied).
pub fn session_error(e: SessionError) -> ErrorObjectOwned {
    let code = match e {
        SessionError::UnknownSession(_) => SESSION_EXPIRED,
        SessionError::TooManySessions { .. } => BACKPRESSURE,
        SessionError::TooManyPending { .. } | SessionError::AlreadyAcknowledged { .. } => BAD_REQUEST,
    };
    ErrorObject::owned(code, e.to_string(), None::<()>)
}
