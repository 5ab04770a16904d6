//! What to do after each attempt: the retry and redirect policy, as a pure function
//! ([`decide`]) so that every case is a unit test.
//!
//! | outcome | read / idempotent write | other write |
//! | --- | --- | --- |
//! | answer | done | done |
//! | could not connect (nothing sent) | next endpoint (a pause after each full round; unreachable after [`UNREACHABLE_ROUNDS`] rounds) | same |
//! | sent, no answer (timeout, connection lost) | next endpoint | **unknown outcome** |
//! | -32020 with `data.address` | that address (at most [`MAX_REDIRECTS`] hops in a row) | same |
//! | -32020 without an address (no leader known) | pause, next endpoint | same |
//! | -32021 unknown outcome | pause, next endpoint | **unknown outcome** |
//! | -32022 unavailable | pause, next endpoint | same |
//! | -32023 not applied | pause, same endpoint (it redirects if no longer leader) | same |
//! | -32024 backpressure | longer pause, same endpoint | same |
//! | any other error, HTTP error | fail | same |
//!
//! Pauses grow from [`BASE_BACKOFF`] and double up to [`MAX_BACKOFF`]; the caller
//! stops when the next pause would pass its deadline.

use std::time::Duration;

use crate::codes;

/// The first pause between retries.
pub const BASE_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Leader hints followed in a row before the client stops trusting them (a loop of
/// stale hints during an election) and pauses.
pub const MAX_REDIRECTS: u32 = 5;
/// Full rounds of endpoints that all refused the connection before giving up.
pub const UNREACHABLE_ROUNDS: u32 = 3;

/// What a call does to the cluster, which decides what may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Changes nothing: always safe to retry.
    Read,
    /// A write that leaves the same state when applied twice (`kv_put`, `kv_delete`,
    /// `config_set`, `config_delete`, `lock_renew`): retried even after an unknown
    /// outcome (its answer then describes the last application).
    IdempotentWrite,
    /// A write that must not be applied twice (`kv_cas`, `lock_acquire`,
    /// `lock_release`, membership changes): never retried once it may have been sent.
    Write,
}

impl CallKind {
    fn retry_when_unsure(self) -> bool {
        !matches!(self, CallKind::Write)
    }
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A JSON-RPC result.
    Answer,
    /// The connection could not be made: nothing was sent.
    NotSent,
    /// The request may have been sent, and no answer came (timeout, connection lost).
    NoAnswer,
    /// A JSON-RPC error, with the leader's client address for -32020 when given.
    Error {
        /// The code.
        code: i64,
        /// `data.address` of a -32020.
        leader_address: Option<String>,
    },
    /// An HTTP answer that is not JSON-RPC.
    Http(u16),
}

/// What the attempts so far were, for [`decide`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tries {
    /// Retries after an error answer so far (for the backoff).
    pub retries: u32,
    /// Leader hints followed in a row.
    pub redirects: u32,
    /// Connection failures in a row.
    pub not_sent: u32,
    /// How many endpoints there are to rotate through.
    pub endpoints: u32,
}

/// Why a call is given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The error is final.
    Refused,
    /// A non-idempotent write may or may not have been applied.
    UnknownOutcome,
    /// No endpoint could be connected to (exit 3).
    Unreachable,
}

/// The next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The answer is the result.
    Done,
    /// Go to the leader at this client address, at once.
    Redirect(String),
    /// Try the next endpoint after a pause.
    Next(Duration),
    /// Try the same endpoint again after a pause.
    Same(Duration),
    /// Give up.
    Fail(Failure),
}

/// The pause before retry number `retry` (0-based): 50 ms, 100 ms, ... up to 1 s.
pub fn backoff(retry: u32) -> Duration {
    BASE_BACKOFF.saturating_mul(1u32 << retry.min(10)).min(MAX_BACKOFF)
}

/// Decides the next step after an attempt of a call of `kind` that ended in `outcome`.
pub fn decide(kind: CallKind, outcome: &Outcome, tries: Tries) -> Decision {
    let pause = backoff(tries.retries);
    match outcome {
        Outcome::Answer => Decision::Done,
        Outcome::NotSent => {
            let n = tries.endpoints.max(1);
            // `not_sent` counts this failure too.
            if tries.not_sent >= n.saturating_mul(UNREACHABLE_ROUNDS) {
                Decision::Fail(Failure::Unreachable)
            } else if tries.not_sent % n == 0 {
                // A whole round failed: pause before the next one.
                Decision::Next(backoff(tries.not_sent / n))
            } else {
                Decision::Next(Duration::ZERO)
            }
        }
        Outcome::NoAnswer if kind.retry_when_unsure() => Decision::Next(Duration::ZERO),
        Outcome::NoAnswer => Decision::Fail(Failure::UnknownOutcome),
        Outcome::Error { code, leader_address } => match i32::try_from(*code).unwrap_or(i32::MIN) {
            codes::NOT_LEADER => match leader_address {
                Some(a) if tries.redirects < MAX_REDIRECTS => Decision::Redirect(a.clone()),
                _ => Decision::Next(pause),
            },
            codes::UNKNOWN_OUTCOME if kind.retry_when_unsure() => Decision::Next(pause),
            codes::UNKNOWN_OUTCOME => Decision::Fail(Failure::UnknownOutcome),
            codes::UNAVAILABLE => Decision::Next(pause),
            codes::NOT_APPLIED => Decision::Same(pause),
            codes::BACKPRESSURE => Decision::Same(backoff(tries.retries.saturating_add(2))),
            _ => Decision::Fail(Failure::Refused),
        },
        Outcome::Http(_) => Decision::Fail(Failure::Refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i32) -> Outcome {
        Outcome::Error {
            code: code.into(),
            leader_address: None,
        }
    }

    fn tries(endpoints: u32) -> Tries {
        Tries {
            endpoints,
            ..Tries::default()
        }
    }

    #[test]
    fn a_leader_hint_is_followed_until_too_many_in_a_row() {
        let hint = Outcome::Error {
            code: codes::NOT_LEADER.into(),
            leader_address: Some("10.0.0.2:7000".into()),
        };
        for kind in [CallKind::Read, CallKind::IdempotentWrite, CallKind::Write] {
            assert_eq!(
                decide(kind, &hint, tries(3)),
                Decision::Redirect("10.0.0.2:7000".into())
            );
        }
        let looping = Tries {
            redirects: MAX_REDIRECTS,
            ..tries(3)
        };
        assert_eq!(decide(CallKind::Write, &hint, looping), Decision::Next(backoff(0)));
        // No leader known (an election): pause and ask elsewhere.
        assert_eq!(
            decide(CallKind::Write, &err(codes::NOT_LEADER), tries(3)),
            Decision::Next(backoff(0))
        );
    }

    #[test]
    fn an_unknown_outcome_is_retried_only_when_idempotent() {
        for outcome in [Outcome::NoAnswer, err(codes::UNKNOWN_OUTCOME)] {
            assert_eq!(
                decide(CallKind::Write, &outcome, tries(3)),
                Decision::Fail(Failure::UnknownOutcome),
                "{outcome:?}"
            );
            assert!(matches!(decide(CallKind::Read, &outcome, tries(3)), Decision::Next(_)));
            assert!(matches!(
                decide(CallKind::IdempotentWrite, &outcome, tries(3)),
                Decision::Next(_)
            ));
        }
    }

    #[test]
    fn unavailable_not_applied_and_backpressure_retry_with_growing_pauses() {
        let t = |retries| Tries { retries, ..tries(3) };
        assert_eq!(
            decide(CallKind::Write, &err(codes::UNAVAILABLE), t(0)),
            Decision::Next(backoff(0))
        );
        assert_eq!(
            decide(CallKind::Write, &err(codes::NOT_APPLIED), t(1)),
            Decision::Same(backoff(1))
        );
        assert_eq!(
            decide(CallKind::Write, &err(codes::BACKPRESSURE), t(0)),
            Decision::Same(backoff(2))
        );
        assert!(backoff(1) > backoff(0));
        assert_eq!(backoff(30), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn final_errors_fail_at_once() {
        for c in [
            codes::UNAUTHORIZED,
            codes::MEMBERSHIP_REFUSED,
            -32600,
            -32601,
            -32602,
            -32700,
            -1,
        ] {
            assert_eq!(
                decide(CallKind::Read, &err(c), tries(3)),
                Decision::Fail(Failure::Refused),
                "{c}"
            );
        }
        assert_eq!(
            decide(CallKind::Read, &Outcome::Http(401), tries(3)),
            Decision::Fail(Failure::Refused)
        );
        assert_eq!(decide(CallKind::Write, &Outcome::Answer, tries(3)), Decision::Done);
    }

    #[test]
    fn connection_failures_rotate_then_pause_per_round_then_give_up() {
        let t = |not_sent| Tries { not_sent, ..tries(3) };
        assert_eq!(
            decide(CallKind::Write, &Outcome::NotSent, t(1)),
            Decision::Next(Duration::ZERO)
        );
        assert_eq!(
            decide(CallKind::Write, &Outcome::NotSent, t(2)),
            Decision::Next(Duration::ZERO)
        );
        assert_eq!(
            decide(CallKind::Write, &Outcome::NotSent, t(3)),
            Decision::Next(backoff(1))
        );
        assert_eq!(
            decide(CallKind::Write, &Outcome::NotSent, t(8)),
            Decision::Next(Duration::ZERO)
        );
        assert_eq!(
            decide(CallKind::Write, &Outcome::NotSent, t(9)),
            Decision::Fail(Failure::Unreachable)
        );
        // One endpoint: pause after each failure.
        let one = Tries {
            not_sent: 1,
            ..tries(1)
        };
        assert_eq!(
            decide(CallKind::Read, &Outcome::NotSent, one),
            Decision::Next(backoff(1))
        );
    }
}
