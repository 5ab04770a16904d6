//! The JSON-RPC error codes of docs/server-api.md.

pub use examples::api::{
    BACKPRESSURE, BAD_REQUEST, NOT_APPLIED, NOT_LEADER, UNAUTHORIZED, UNAVAILABLE, UNKNOWN_OUTCOME,
};

/// A membership change was refused: `data = {reason}`, `reason` one of
/// [`REASONS`].
pub const MEMBERSHIP_REFUSED: i32 = -32031;
/// The method is not served (a service not configured, or not implemented yet).
pub const METHOD_NOT_FOUND: i32 = -32601;

/// The `reason`s of [`MEMBERSHIP_REFUSED`].
pub const REASONS: [&str; 5] = [
    "last_voter",
    "change_in_progress",
    "unknown_member",
    "already_member",
    "not_caught_up",
];
