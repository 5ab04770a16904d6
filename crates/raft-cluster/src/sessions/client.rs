//! [`Session`]: a client's side of one session.

use std::collections::BTreeSet;

use super::command::{SessionCommand, SessionId};

/// A client's side of one session: numbers its commands and tracks which were
/// answered, so a retry reuses the same sequence number.
#[derive(Clone, Debug)]
pub struct Session {
    id: SessionId,
    next: u64,
    /// Sequence numbers sent and not yet answered.
    outstanding: BTreeSet<u64>,
}

impl Session {
    /// The client's side of session `id` (from [`SessionResponse::Registered`](super::SessionResponse::Registered)).
    pub fn new(id: SessionId) -> Self {
        Session {
            id,
            next: 1,
            outstanding: BTreeSet::new(),
        }
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The lowest sequence number not yet answered (every one below it was).
    pub fn acked(&self) -> u64 {
        self.outstanding.first().copied().unwrap_or(self.next)
    }

    /// A new command of the session, stamped `at_ms`. Retry it as it is (clone it)
    /// until it is answered, then call [`answered`](Self::answered).
    pub fn command<C>(&mut self, command: C, at_ms: u64) -> SessionCommand<C> {
        let seq = self.next;
        self.next = self.next.saturating_add(1);
        self.outstanding.insert(seq);
        SessionCommand::Apply {
            session: self.id,
            seq,
            acked: self.acked(),
            at_ms,
            command,
        }
    }

    /// The command with sequence number `seq` got its answer.
    pub fn answered(&mut self, seq: u64) {
        self.outstanding.remove(&seq);
    }
}
