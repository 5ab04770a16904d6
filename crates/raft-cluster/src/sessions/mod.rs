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
//!
//! The files: `command` (what goes through the log and what comes back), `table`
//! (the bookkeeping), `machine` (the wrapper around a state machine), `client` (a
//! client's numbering of its commands).

mod client;
mod command;
mod machine;
mod table;
#[cfg(test)]
mod tests;

pub use client::Session;
pub use command::{SessionCommand, SessionError, SessionId, SessionResponse};
pub use machine::Sessions;
pub use table::{SessionLimits, SessionTable};
