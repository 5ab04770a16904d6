//! When a membership operation is refused, and with which reason (`-32031` with
//! `data.reason`, docs/server-api.md): pure functions of the leader's [`Status`].

use easyraft::core::{MembershipError, ProgressState};
use easyraft::{NodeId, Status};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde_json::json;

use crate::rpc_codes::MEMBERSHIP_REFUSED;

/// A `-32031` refusal.
pub fn refused(reason: &'static str, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(MEMBERSHIP_REFUSED, message, Some(json!({ "reason": reason })))
}

/// The reason a refusal by Raft's membership rules is reported with; `None` for an
/// error that is not a refusal (a bad request).
pub(super) fn reason(e: &MembershipError) -> Option<&'static str> {
    match e {
        MembershipError::ChangeInProgress { .. } => Some("change_in_progress"),
        MembershipError::RemovesLastVoter => Some("last_voter"),
        MembershipError::UnknownNode(_) | MembershipError::NotALearner(_) => Some("unknown_member"),
        MembershipError::AlreadyVoter(_) | MembershipError::AlreadyLearner(_) => Some("already_member"),
        _ => None,
    }
}

/// Whether `id` is a member (voter, outgoing voter or learner).
pub(super) fn is_member(s: &Status, id: &str) -> bool {
    let id = NodeId::new(id);
    s.membership.voters.contains(&id)
        || s.membership.voters_outgoing.contains(&id)
        || s.membership.learners.contains(&id)
}

/// How far `id` is behind the leader's log, as the leader sees it.
pub(super) fn lag(s: &Status, id: &str) -> Option<u64> {
    s.progress
        .get(&NodeId::new(id))
        .map(|p| s.last_index.saturating_sub(p.match_index))
}

/// Whether `id` has caught up: it acknowledged entries (a learner that never answered
/// has `match` 0, which a short log would otherwise count as "within the lag"), is
/// being replicated to, and is within `max_lag` of the leader's log.
pub(super) fn caught_up(s: &Status, id: &str, max_lag: u64) -> bool {
    s.progress.get(&NodeId::new(id)).is_some_and(|p| {
        p.match_index > 0
            && matches!(p.state, ProgressState::Replicate)
            && s.last_index.saturating_sub(p.match_index) <= max_lag
    })
}
