//! The bounds on terms and indexes that a message (or a disk) may carry, and the
//! check every message passes at the step boundary before any rule sees it.
//!
//! Raft trusts its peers, but a peer with the cluster token (or a flipped bit) can
//! still send any number. Two things must never follow from that: arithmetic that
//! overflows (a panic in debug builds, a wrapped term in release builds), and a term
//! so high that the cluster can no longer elect a leader after it.
//!
//! - **Indexes** grow only by one per entry the leader appends; the only jump is a
//!   snapshot, whose index must be at most [`MAX_SNAPSHOT_INDEX`] (2^62, out of reach
//!   of any real log: 10 million entries a second for 14,000 years). Every other index
//!   a message carries must be at most [`MAX_INDEX`] (2^63), and a log never grows past
//!   it ([`crate::Error::LogFull`]). The room between the two lets a cluster that was
//!   sent a snapshot at the bound go on appending (and electing: a full log could not
//!   campaign) for another 2^62 entries. Arithmetic on indexes up to 2^63
//!   (`index + 1`, `index + entries.len()`) cannot overflow.
//! - **Terms** grow by one per election, but a peer can make a node jump to any term it
//!   sends. After a jump the cluster must still elect leaders, so a bound on terms
//!   cannot be absolute: the cluster's next elections go past it. A node therefore
//!   accepts a term up to [`TERM_HEADROOM`] above the larger of its own term and
//!   [`MAX_TERM`] (2^62), see [`term_limit`]. A jump to the bound recovers like any
//!   other election. A node pushed alone campaigns one term above what its peers
//!   accept; they learn its term from its answers, and in case they miss them (they
//!   were partitioned, or elected a leader among themselves meanwhile) the limit
//!   widens with time: for each election timeout a node spends in its term it accepts
//!   another `TERM_HEADROOM` terms, so nobody is left behind for more than an election
//!   timeout or two. Each further forged jump of a node past what its peers accept
//!   costs the cluster at most about one more election timeout. Going far beyond the
//!   bound takes one message per `TERM_HEADROOM` terms (over 2^47 messages to reach
//!   `u64::MAX`), or millions of years in one term; a node whose term got there stops
//!   campaigning (logged) instead of wrapping. A token holder who keeps sending can
//!   always keep a cluster busy (Raft trusts its peers); what is bounded is what one
//!   message, or a flipped bit, can do.

use std::fmt;

use crate::entry::SnapshotMeta;
use crate::message::{AppendResponse, Message, MessageBody};
use crate::types::{LogIndex, Term};

/// The highest term a peer can make a node at or below it jump to (plus
/// [`TERM_HEADROOM`]). See the module docs.
pub const MAX_TERM: Term = 1 << 62;

/// How far above `max(own term, MAX_TERM)` a message's term may be: room for the
/// elections that follow a jump, and for a node that lagged behind them.
pub const TERM_HEADROOM: Term = 1 << 16;

/// The highest log index (entry, commit, match, read) a message or a disk may carry,
/// and the length a log can reach.
pub const MAX_INDEX: LogIndex = 1 << 63;

/// The highest index a snapshot may have (from a message or a disk): the farthest a
/// peer can make a log jump. See the module docs.
pub const MAX_SNAPSHOT_INDEX: LogIndex = 1 << 62;

pub use crate::message::MAX_ENTRIES_PER_MESSAGE;

/// The highest term a node at term `local` accepts from a message, once it has been
/// in that term for `timeouts_in_term` whole election timeouts.
pub fn term_limit(local: Term, timeouts_in_term: u64) -> Term {
    let room = TERM_HEADROOM.saturating_mul(timeouts_in_term.saturating_add(1));
    local.max(MAX_TERM).saturating_add(room)
}

/// Why a message was refused before any protocol rule saw it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The sender's id is empty.
    #[error("empty sender id")]
    EmptySender,
    /// The message's term is beyond [`term_limit`] of the receiver's term.
    #[error("term {term} is beyond the limit {limit}")]
    TermTooHigh {
        /// The message's term.
        term: Term,
        /// The highest term the receiver accepts.
        limit: Term,
    },
    /// A term inside the message is higher than the message's own term (no node holds
    /// entries, or a snapshot, of a term later than its own).
    #[error("{field} {value} is beyond the message's term {term}")]
    TermBeyondMessage {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: Term,
        /// The message's term.
        term: Term,
    },
    /// An index in the message is beyond [`MAX_INDEX`] (or overflows).
    #[error("{field} {value} is beyond the index limit {MAX_INDEX}")]
    IndexTooHigh {
        /// Which field.
        field: &'static str,
        /// Its value (`u64::MAX` if computing it overflowed).
        value: LogIndex,
    },
    /// A snapshot's metadata cannot describe a real snapshot.
    #[error("snapshot at {index}/{term}: {problem}")]
    BadSnapshot {
        /// The snapshot's index.
        index: LogIndex,
        /// The snapshot's term.
        term: Term,
        /// What is wrong with it.
        problem: SnapshotProblem,
    },
}

/// What is wrong with a snapshot's metadata, in [`Refusal::BadSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotProblem {
    /// Index 0 is the empty log; a snapshot covers at least one entry.
    ZeroIndex,
    /// Index beyond [`MAX_SNAPSHOT_INDEX`].
    IndexTooHigh,
    /// Term 0 is before any leader: no entry has it.
    ZeroTerm,
    /// The configuration has no voter: a cluster installed from it could never elect.
    NoVoters,
    /// A chunk's bytes do not fit in the snapshot's stated length, or the last chunk
    /// does not end there.
    ChunkOutOfRange,
}

impl fmt::Display for SnapshotProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotProblem::ZeroIndex => "index 0 covers no entry",
            SnapshotProblem::IndexTooHigh => "index beyond the snapshot index limit (2^62)",
            SnapshotProblem::ZeroTerm => "term 0 has no entries",
            SnapshotProblem::NoVoters => "membership without a voter",
            SnapshotProblem::ChunkOutOfRange => "chunk outside the snapshot's stated length",
        })
    }
}

/// Checks a snapshot's metadata: index in `1..=MAX_SNAPSHOT_INDEX`, term at least 1,
/// a voter.
/// Used for snapshots from the network and, by storages, from disk.
pub fn check_snapshot_meta(meta: &SnapshotMeta) -> Result<(), Refusal> {
    let problem = if meta.index == 0 {
        SnapshotProblem::ZeroIndex
    } else if meta.index > MAX_SNAPSHOT_INDEX {
        SnapshotProblem::IndexTooHigh
    } else if meta.term == 0 {
        SnapshotProblem::ZeroTerm
    } else if meta.membership.voters.is_empty() {
        SnapshotProblem::NoVoters
    } else {
        return Ok(());
    };
    Err(Refusal::BadSnapshot {
        index: meta.index,
        term: meta.term,
        problem,
    })
}

fn index(field: &'static str, value: LogIndex) -> Result<(), Refusal> {
    if value > MAX_INDEX {
        return Err(Refusal::IndexTooHigh { field, value });
    }
    Ok(())
}

fn inner_term(field: &'static str, value: Term, term: Term) -> Result<(), Refusal> {
    if value > term {
        return Err(Refusal::TermBeyondMessage { field, value, term });
    }
    Ok(())
}

/// The check at the step boundary: a message that passes carries no term or index the
/// protocol's arithmetic could overflow on, and no term above `term_limit` (the
/// receiver's [`term_limit`]).
pub fn check_message(m: &Message, term_limit: Term) -> Result<(), Refusal> {
    if m.from.as_str().is_empty() {
        return Err(Refusal::EmptySender);
    }
    let term = m.term;
    let limit = term_limit;
    if term > limit {
        return Err(Refusal::TermTooHigh { term, limit });
    }
    match &m.body {
        MessageBody::RequestVote(v) => {
            index("last_log_index", v.last_log_index)?;
            inner_term("last_log_term", v.last_log_term, term)?;
        }
        MessageBody::AppendEntries(a) => {
            index("prev_log_index", a.prev_log_index)?;
            index("commit", a.commit)?;
            inner_term("prev_log_term", a.prev_log_term, term)?;
            let last = a.prev_log_index.saturating_add(a.entries.len() as u64);
            index("last entry index", last)?;
            for e in &a.entries {
                index("entry index", e.index)?;
                inner_term("entry term", e.term, term)?;
            }
        }
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index }) => {
            index("match_index", *match_index)?;
        }
        MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
            rejected_index,
            hint_index,
            hint_term,
        }) => {
            index("rejected_index", *rejected_index)?;
            index("hint_index", *hint_index)?;
            inner_term("hint_term", *hint_term, term)?;
        }
        MessageBody::Heartbeat(h) => index("commit", h.commit)?,
        MessageBody::InstallSnapshot(s) => {
            check_snapshot_meta(&s.meta)?;
            inner_term("snapshot term", s.meta.term, term)?;
            let end = s.offset.checked_add(s.data.len() as u64);
            if end.is_none_or(|end| end > s.total || (s.done && end != s.total)) {
                return Err(Refusal::BadSnapshot {
                    index: s.meta.index,
                    term: s.meta.term,
                    problem: SnapshotProblem::ChunkOutOfRange,
                });
            }
        }
        MessageBody::InstallSnapshotResponse(s) => {
            index("snapshot index", s.index)?;
            index("last_index", s.last_index)?;
        }
        MessageBody::ReadIndexResponse(r) => index("read index", r.index)?,
        MessageBody::Quiesce(q) => {
            index("commit", q.commit)?;
            index("last_index", q.last_index)?;
            inner_term("last_term", q.last_term, term)?;
        }
        MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm)
        | MessageBody::RequestVoteResponse(_)
        | MessageBody::HeartbeatResponse(_)
        | MessageBody::TimeoutNow
        | MessageBody::ReadIndex(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Heartbeat;
    use crate::types::{Membership, NodeId};

    fn heartbeat(term: Term, commit: LogIndex) -> Message {
        Message {
            group: 0,
            from: NodeId::new("evil"),
            to: NodeId::new("a"),
            term,
            body: MessageBody::Heartbeat(Heartbeat { commit, read_round: 0 }),
        }
    }

    #[test]
    fn term_limit_follows_the_local_term_past_the_bound_and_saturates() {
        assert_eq!(term_limit(0, 0), MAX_TERM + TERM_HEADROOM);
        assert_eq!(term_limit(MAX_TERM + 5, 0), MAX_TERM + 5 + TERM_HEADROOM);
        assert_eq!(term_limit(7, 2), MAX_TERM + 3 * TERM_HEADROOM);
        assert_eq!(term_limit(u64::MAX - 1, 0), u64::MAX);
        assert_eq!(term_limit(3, u64::MAX), u64::MAX);
    }

    #[test]
    fn huge_terms_and_indexes_are_refused_and_the_bound_itself_is_not() {
        let limit = term_limit(3, 0);
        assert!(check_message(&heartbeat(MAX_TERM + TERM_HEADROOM, MAX_INDEX), limit).is_ok());
        assert_eq!(
            check_message(&heartbeat(u64::MAX, 0), limit),
            Err(Refusal::TermTooHigh {
                term: u64::MAX,
                limit: MAX_TERM + TERM_HEADROOM
            })
        );
        assert!(matches!(
            check_message(&heartbeat(1, u64::MAX), limit),
            Err(Refusal::IndexTooHigh { field: "commit", .. })
        ));
        let mut m = heartbeat(1, 0);
        m.from = NodeId::new("");
        assert_eq!(check_message(&m, limit), Err(Refusal::EmptySender));
    }

    #[test]
    fn snapshot_metadata_must_describe_a_real_snapshot() {
        let good = SnapshotMeta {
            index: 7,
            term: 2,
            membership: Membership::with_voters(["a"]),
        };
        assert_eq!(check_snapshot_meta(&good), Ok(()));
        for (meta, problem) in [
            (
                SnapshotMeta {
                    index: 0,
                    ..good.clone()
                },
                SnapshotProblem::ZeroIndex,
            ),
            (
                SnapshotMeta {
                    index: u64::MAX,
                    ..good.clone()
                },
                SnapshotProblem::IndexTooHigh,
            ),
            (
                SnapshotMeta {
                    term: 0,
                    ..good.clone()
                },
                SnapshotProblem::ZeroTerm,
            ),
            (
                SnapshotMeta {
                    membership: Membership::default(),
                    ..good.clone()
                },
                SnapshotProblem::NoVoters,
            ),
        ] {
            assert!(
                matches!(check_snapshot_meta(&meta), Err(Refusal::BadSnapshot { problem: p, .. }) if p == problem),
                "{meta:?}"
            );
        }
    }
}
