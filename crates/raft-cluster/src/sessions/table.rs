//! [`SessionTable`]: the bookkeeping of exactly-once sessions (who is open, what
//! each kept, log time and expiry), apart from any state machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use raft_core::LogIndex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::command::{SessionCommand, SessionError, SessionId, SessionResponse};
use crate::error::BoxError;

/// The bounds of a [`Sessions`](super::Sessions) wrapper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    /// Sessions open at once (default 10,000).
    pub max_sessions: usize,
    /// Unacknowledged responses kept per session (default 1,024): how many commands a
    /// client may have in flight.
    pub max_pending: usize,
    /// A session with no command for this long, in log time, expires (default 2 min).
    pub expiry: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 10_000,
            max_pending: 1_024,
            expiry: Duration::from_secs(120),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionState<R> {
    /// Log time of its last command.
    last_active: u64,
    /// Commands below this were acknowledged by the client.
    acked: u64,
    /// Responses kept, by sequence number.
    responses: BTreeMap<u64, R>,
}

/// What a snapshot holds of a [`SessionTable`].
/// (`S` is the session map, borrowed when written, owned when read.)
#[derive(Serialize, Deserialize)]
struct TableSnapshot<S> {
    now: u64,
    sessions: S,
}

/// The bookkeeping of exactly-once sessions, apart from any state machine: what
/// [`Sessions`](super::Sessions) wraps around a machine, and what a machine that keeps its own command
/// enum (to stay readable from older logs, as `easyraft-server`'s does) embeds.
///
/// Deterministic: the same commands at the same log indexes leave every replica's
/// table identical, expiries included.
#[derive(Clone, Debug)]
pub struct SessionTable<R> {
    limits: SessionLimits,
    /// Log time: the highest stamp applied.
    now: u64,
    sessions: BTreeMap<SessionId, SessionState<R>>,
    /// (last_active, session), to expire the oldest first.
    by_age: BTreeSet<(u64, SessionId)>,
}

impl<R: Clone + Serialize + DeserializeOwned> SessionTable<R> {
    /// An empty table with these bounds.
    pub fn new(limits: SessionLimits) -> Self {
        SessionTable {
            limits,
            now: 0,
            sessions: BTreeMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// The table's bounds.
    pub(crate) fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Responses kept, over all sessions.
    pub fn kept_responses(&self) -> usize {
        self.sessions.values().map(|s| s.responses.len()).sum()
    }

    /// Log time: the highest stamp applied so far (milliseconds).
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Moves log time to `at_ms` (if later) and expires the sessions idle for longer
    /// than [`SessionLimits::expiry`]. Every command with a stamp may call it, in or
    /// out of a session, so idle sessions expire as the log's time moves.
    pub fn tick(&mut self, at_ms: u64) {
        self.now = self.now.max(at_ms);
        let expiry = u64::try_from(self.limits.expiry.as_millis()).unwrap_or(u64::MAX);
        while let Some(&(active, id)) = self.by_age.first() {
            if active.saturating_add(expiry) >= self.now {
                break;
            }
            self.by_age.remove(&(active, id));
            self.sessions.remove(&id);
        }
    }

    /// Marks session `id` active now; the session, if it is open.
    fn touch(&mut self, id: SessionId) -> Option<&mut SessionState<R>> {
        let now = self.now;
        let s = self.sessions.get_mut(&id)?;
        self.by_age.remove(&(s.last_active, id));
        s.last_active = now;
        self.by_age.insert((now, id));
        Some(s)
    }

    /// Applies one session command at log `index`; `apply` runs the wrapped command,
    /// at most once per (session, seq) over the table's whole history.
    pub fn apply<C>(
        &mut self,
        index: LogIndex,
        command: SessionCommand<C>,
        apply: impl FnOnce(LogIndex, C) -> R,
    ) -> SessionResponse<R> {
        match command {
            SessionCommand::Register { at_ms } => {
                self.tick(at_ms);
                if self.sessions.len() >= self.limits.max_sessions {
                    return SessionResponse::Refused(SessionError::TooManySessions {
                        open: self.sessions.len(),
                    });
                }
                self.sessions.insert(
                    index,
                    SessionState {
                        last_active: self.now,
                        acked: 0,
                        responses: BTreeMap::new(),
                    },
                );
                self.by_age.insert((self.now, index));
                SessionResponse::Registered(index)
            }
            SessionCommand::KeepAlive { session, at_ms } => {
                self.tick(at_ms);
                match self.touch(session) {
                    Some(_) => SessionResponse::Done,
                    None => SessionResponse::Refused(SessionError::UnknownSession(session)),
                }
            }
            SessionCommand::Close { session, at_ms } => {
                self.tick(at_ms);
                match self.sessions.remove(&session) {
                    Some(s) => {
                        self.by_age.remove(&(s.last_active, session));
                        SessionResponse::Done
                    }
                    None => SessionResponse::Refused(SessionError::UnknownSession(session)),
                }
            }
            SessionCommand::Direct(command) => SessionResponse::Applied(apply(index, command)),
            SessionCommand::Apply {
                session,
                seq,
                acked,
                at_ms,
                command,
            } => {
                self.tick(at_ms);
                let limit = self.limits.max_pending;
                let Some(s) = self.touch(session) else {
                    return SessionResponse::Refused(SessionError::UnknownSession(session));
                };
                if acked > s.acked {
                    s.acked = acked;
                    s.responses = s.responses.split_off(&acked);
                }
                if let Some(r) = s.responses.get(&seq) {
                    return SessionResponse::Applied(r.clone());
                }
                if seq < s.acked {
                    return SessionResponse::Refused(SessionError::AlreadyAcknowledged { session, seq });
                }
                if s.responses.len() >= limit {
                    return SessionResponse::Refused(SessionError::TooManyPending { session, limit });
                }
                let r = apply(index, command);
                s.responses.insert(seq, r.clone());
                SessionResponse::Applied(r)
            }
        }
    }

    /// The table as bytes, for a snapshot.
    pub fn encode(&self) -> Result<Vec<u8>, BoxError> {
        Ok(postcard::to_allocvec(&TableSnapshot {
            now: self.now,
            sessions: &self.sessions,
        })?)
    }

    /// Replaces the table with one from [`encode`](Self::encode) (the bounds stay this
    /// table's). On an error the table is left as it was.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        let snap: TableSnapshot<BTreeMap<SessionId, SessionState<R>>> = postcard::from_bytes(bytes)?;
        self.now = snap.now;
        self.by_age = snap.sessions.iter().map(|(id, s)| (s.last_active, *id)).collect();
        self.sessions = snap.sessions;
        Ok(())
    }
}
