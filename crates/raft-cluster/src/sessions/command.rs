//! The session protocol's values: the commands a [`Sessions`](super::Sessions)
//! wrapper applies from the log, its answers, and why it refuses one.

use raft_core::LogIndex;
use serde::{Deserialize, Serialize};

/// A session's id: the log index of the entry that registered it.
pub type SessionId = LogIndex;

/// A command to a [`Sessions`](super::Sessions) wrapper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionCommand<C> {
    /// Opens a session; answered with [`SessionResponse::Registered`].
    Register {
        /// The proposing node's clock, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// A command of the wrapped machine, within a session.
    Apply {
        /// The session.
        session: SessionId,
        /// This command's sequence number in the session (from 1).
        seq: u64,
        /// Every command of the session below this sequence number has been answered
        /// to the client: their responses may be dropped.
        acked: u64,
        /// The proposing node's clock, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// The command.
        command: C,
    },
    /// Keeps a session alive without a command.
    KeepAlive {
        /// The session.
        session: SessionId,
        /// The proposing node's clock.
        at_ms: u64,
    },
    /// Closes a session and drops what it kept.
    Close {
        /// The session.
        session: SessionId,
        /// The proposing node's clock.
        at_ms: u64,
    },
    /// A command of the wrapped machine outside any session: applied as it is, so a
    /// retry is a second command (what a client that opens no session gets).
    Direct(C),
}

/// The answer of a [`Sessions`](super::Sessions) wrapper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionResponse<R> {
    /// A session was opened with this id.
    Registered(SessionId),
    /// The command's response: applied now, or kept from when it was applied first.
    Applied(R),
    /// The session was kept alive or closed.
    Done,
    /// Nothing was applied.
    Refused(SessionError),
}

/// Why a session command was refused. Nothing was applied in every case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SessionError {
    /// The session expired or never existed: register a new one. (A command retried
    /// after this may or may not have been applied under the old session.)
    #[error("session {0} is unknown or expired; register a new session")]
    UnknownSession(SessionId),
    /// As many sessions as [`SessionLimits::max_sessions`](super::SessionLimits::max_sessions) are open.
    #[error("{open} sessions are open, the limit; close one or wait for one to expire")]
    TooManySessions {
        /// The limit.
        open: usize,
    },
    /// The session keeps as many unacknowledged responses as
    /// [`SessionLimits::max_pending`](super::SessionLimits::max_pending): acknowledge some (send `acked` higher).
    #[error("session {session} keeps {limit} unacknowledged responses, the limit")]
    TooManyPending {
        /// The session.
        session: SessionId,
        /// The limit.
        limit: usize,
    },
    /// The command's sequence number is below what the client acknowledged: its
    /// response was dropped, and it is not applied again.
    #[error("session {session}: sequence {seq} was acknowledged already; its response is gone")]
    AlreadyAcknowledged {
        /// The session.
        session: SessionId,
        /// The sequence number.
        seq: u64,
    },
}
