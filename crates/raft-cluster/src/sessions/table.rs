//! Exactly-once client sessions for any state machine (Raft thesis §6.3).
//!
//! A write whose reply was lost (a timeout, a leader that died, a connection that
//! dropped) has an unknown outcome; retrying it may apply it twice. [`Sessions`] wraps a
//! state machine so that a retried write returns the original result instead:
//!
//! - a client registers a session through the log ([`SessionCommand::Register`]); the
//!   session's id is the index of that entry;
//! - each command carries (session, sequence number) and the lowest sequence number the
//!   client has not yet seen answered (`acked`): responses below it are dropped;
//! - the wrapper applies each (session, seq) once and keeps its response until the
//!   client acknowledges it, so a retry of the same (session, seq) gets that response;
//! - sessions expire by **log time**: every command carries the proposing node's clock
//!   (`at_ms`, stamped on the leader, which is the only node that accepts proposals);
//!   the wrapper's clock is the highest stamp applied so far, so every replica expires
//!   the same sessions at the same entry;
//! - sessions and their kept responses are in snapshots;
//! - memory is bounded: at most [`SessionLimits::max_sessions`] sessions with at most
//!   [`SessionLimits::max_pending`] kept responses each; past either, the command is
//!   refused with a typed [`SessionError`] and nothing is applied.
//!
//! Reads need no session: [`Sessions`]' queries go straight to the wrapped machine.
//!
//! ```
//! use raft_cluster::sessions::{Session, SessionCommand, SessionResponse, Sessions, SessionLimits};
//! use raft_cluster::StateMachine;
//! # use raft_cluster::testing::Counter;
//!
//! let mut sm = Sessions::new(Counter::default(), SessionLimits::default());
//! let SessionResponse::Registered(id) = sm.apply(1, SessionCommand::Register { at_ms: 0 }) else { panic!() };
//! let mut session = Session::new(id);
//! let cmd = session.command(5, 10); // add 5, stamped at 10 ms
//! let first = sm.apply(2, cmd.clone());
//! let retry = sm.apply(3, cmd); // the same (session, seq) again: applied once
//! assert_eq!(first, retry);
//! assert_eq!(sm.inner().0, 5);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::Duration;

use raft_core::LogIndex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::BoxError;
use crate::state_machine::StateMachine;

/// A session's id: the log index of the entry that registered it.
pub type SessionId = LogIndex;

/// A command to a [`Sessions`] wrapper.
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

/// The answer of a [`Sessions`] wrapper.
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
    /// As many sessions as [`SessionLimits::max_sessions`] are open.
    #[error("{open} sessions are open, the limit; close one or wait for one to expire")]
    TooManySessions {
        /// The limit.
        open: usize,
    },
    /// The session keeps as many unacknowledged responses as
    /// [`SessionLimits::max_pending`]: acknowledge some (send `acked` higher).
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

/// The bounds of a [`Sessions`] wrapper.
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
/// [`Sessions`] wraps around a machine, and what a machine that keeps its own command
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

/// Wraps a state machine with exactly-once client sessions (see the module docs).
#[derive(Debug)]
pub struct Sessions<SM: StateMachine> {
    inner: SM,
    table: SessionTable<SM::Response>,
}

/// The largest session table a snapshot may announce (bytes).
const MAX_TABLE_BYTES: u64 = 1 << 32;

impl<SM: StateMachine> Sessions<SM>
where
    SM::Response: Clone + Serialize + DeserializeOwned,
{
    /// Wraps `inner`.
    pub fn new(inner: SM, limits: SessionLimits) -> Self {
        Sessions {
            inner,
            table: SessionTable::new(limits),
        }
    }

    /// The wrapped machine.
    pub fn inner(&self) -> &SM {
        &self.inner
    }

    /// The session table.
    pub fn table(&self) -> &SessionTable<SM::Response> {
        &self.table
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.table.open_sessions()
    }

    /// Responses kept, over all sessions.
    pub fn kept_responses(&self) -> usize {
        self.table.kept_responses()
    }
}

impl<SM: StateMachine> StateMachine for Sessions<SM>
where
    SM::Response: Clone + Serialize + DeserializeOwned,
{
    type Command = SessionCommand<SM::Command>;
    type Response = SessionResponse<SM::Response>;
    type Query = SM::Query;
    type QueryResponse = SM::QueryResponse;

    fn apply(&mut self, index: LogIndex, command: Self::Command) -> Self::Response {
        let inner = &mut self.inner;
        self.table.apply(index, command, |i, c| inner.apply(i, c))
    }

    fn query(&self, query: Self::Query) -> Self::QueryResponse {
        self.inner.query(query)
    }

    fn write_snapshot(&self, out: &mut dyn Write) -> Result<(), BoxError> {
        let table = self.table.encode()?;
        out.write_all(&(table.len() as u64).to_le_bytes())?;
        out.write_all(&table)?;
        self.inner.write_snapshot(out)
    }

    fn read_snapshot(&mut self, input: &mut dyn Read) -> Result<(), BoxError> {
        let mut len = [0u8; 8];
        input.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_TABLE_BYTES {
            return Err(format!("a session table of {len} bytes, over the limit of {MAX_TABLE_BYTES}").into());
        }
        let mut bytes = Vec::new();
        input.take(len).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != len {
            return Err(format!("the session table ends after {} of {len} bytes", bytes.len()).into());
        }
        // Decode into a copy first: the wrapped machine leaves its state as it was on
        // an error, and so does the table.
        let mut table = SessionTable::new(self.table.limits.clone());
        table.decode(&bytes)?;
        self.inner.read_snapshot(input)?;
        self.table = table;
        Ok(())
    }
}

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
    /// The client's side of session `id` (from [`SessionResponse::Registered`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Counter;

    fn register(sm: &mut Sessions<Counter>, index: LogIndex, at_ms: u64) -> SessionId {
        match sm.apply(index, SessionCommand::Register { at_ms }) {
            SessionResponse::Registered(id) => id,
            other => panic!("{other:?}"),
        }
    }

    fn apply(session: SessionId, seq: u64, acked: u64, at_ms: u64, add: u64) -> SessionCommand<u64> {
        SessionCommand::Apply {
            session,
            seq,
            acked,
            at_ms,
            command: add,
        }
    }

    #[test]
    fn a_retried_command_is_applied_once_and_answered_the_same() {
        let mut sm = Sessions::new(Counter::default(), SessionLimits::default());
        let s = register(&mut sm, 1, 0);
        let a = sm.apply(2, apply(s, 1, 1, 1, 5));
        let b = sm.apply(3, apply(s, 1, 1, 2, 5));
        assert_eq!(a, b);
        assert_eq!(sm.inner().0, 5);
        // The client saw seq 1 answered: acked 2 drops it; a late retry is refused.
        let c = sm.apply(4, apply(s, 2, 2, 3, 7));
        assert_eq!(sm.inner().0, 12);
        assert_eq!(sm.kept_responses(), 1, "{c:?}");
        assert_eq!(
            sm.apply(5, apply(s, 1, 2, 4, 5)),
            SessionResponse::Refused(SessionError::AlreadyAcknowledged { session: s, seq: 1 })
        );
        assert_eq!(sm.inner().0, 12);
    }

    #[test]
    fn sessions_expire_by_log_time_and_limits_refuse_without_applying() {
        let limits = SessionLimits {
            max_sessions: 2,
            max_pending: 2,
            expiry: Duration::from_millis(100),
        };
        let mut sm = Sessions::new(Counter::default(), limits);
        let a = register(&mut sm, 1, 1000);
        let b = register(&mut sm, 2, 1010);
        assert_eq!(
            sm.apply(3, SessionCommand::Register { at_ms: 1020 }),
            SessionResponse::Refused(SessionError::TooManySessions { open: 2 })
        );
        // Two unacknowledged responses is the limit.
        sm.apply(4, apply(a, 1, 1, 1030, 1));
        sm.apply(5, apply(a, 2, 1, 1030, 1));
        assert_eq!(
            sm.apply(6, apply(a, 3, 1, 1030, 1)),
            SessionResponse::Refused(SessionError::TooManyPending { session: a, limit: 2 })
        );
        assert_eq!(sm.inner().0, 2);
        // b is idle from 1010; a stamp at 1111 expires it (a was active at 1030).
        sm.apply(
            7,
            SessionCommand::KeepAlive {
                session: a,
                at_ms: 1111,
            },
        );
        assert_eq!(sm.open_sessions(), 1);
        assert_eq!(
            sm.apply(8, apply(b, 1, 1, 1111, 1)),
            SessionResponse::Refused(SessionError::UnknownSession(b))
        );
        // A clock that goes back changes nothing: log time only moves forward.
        sm.apply(9, SessionCommand::KeepAlive { session: a, at_ms: 5 });
        assert_eq!(sm.open_sessions(), 1);
        assert_eq!(
            sm.apply(
                10,
                SessionCommand::Close {
                    session: a,
                    at_ms: 1200
                }
            ),
            SessionResponse::Done
        );
        assert_eq!(sm.open_sessions(), 0);
    }

    #[test]
    fn the_sessions_and_their_kept_responses_survive_a_snapshot() {
        let mut sm = Sessions::new(Counter::default(), SessionLimits::default());
        let s = register(&mut sm, 1, 0);
        let first = sm.apply(2, apply(s, 1, 1, 1, 5));
        let mut snap = Vec::new();
        sm.write_snapshot(&mut snap).unwrap();
        let mut other = Sessions::new(Counter::default(), SessionLimits::default());
        other.read_snapshot(&mut &snap[..]).unwrap();
        assert_eq!(other.apply(3, apply(s, 1, 1, 2, 5)), first, "the retry after a restore");
        assert_eq!(other.inner().0, 5);
        // A damaged snapshot changes nothing.
        let mut bad = snap.clone();
        bad.truncate(snap.len() - 3);
        let mut third = Sessions::new(Counter::default(), SessionLimits::default());
        assert!(third.read_snapshot(&mut &bad[..]).is_err());
        assert_eq!(third.open_sessions(), 0);
        let huge = u64::MAX.to_le_bytes();
        assert!(third.read_snapshot(&mut &huge[..]).is_err());
    }

    #[test]
    fn the_client_side_numbers_commands_and_reports_what_was_answered() {
        let mut c = Session::new(7);
        let one = c.command("a", 0);
        let two = c.command("b", 0);
        assert!(matches!(one, SessionCommand::Apply { seq: 1, acked: 1, .. }));
        assert!(matches!(two, SessionCommand::Apply { seq: 2, acked: 1, .. }));
        c.answered(2);
        assert_eq!(c.acked(), 1, "1 is still outstanding");
        c.answered(1);
        assert_eq!(c.acked(), 3);
        assert!(matches!(
            c.command("c", 0),
            SessionCommand::Apply { seq: 3, acked: 3, .. }
        ));
    }
}
