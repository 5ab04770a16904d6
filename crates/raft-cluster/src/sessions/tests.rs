//! The sessions' unit tests: exactly once, expiry, limits, snapshots, the client side.

use std::time::Duration;

use raft_core::LogIndex;

use super::*;
use crate::state_machine::StateMachine;
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
