//! The JSON-RPC error codes of docs/server-api.md, defined once: the services and
//! `easyraft-server` answer with them, and the client's retry policy reads them.

/// The request reached a follower: `data` is `{"leader": id, "address": "host:port"}`.
pub const NOT_LEADER: i32 = -32020;
/// The outcome is unknown (a timeout, the node stopping with the request pending, a
/// storage failure): the write may or may not have happened. Retry only what is
/// idempotent, or read first.
pub const UNKNOWN_OUTCOME: i32 = -32021;
/// The node cannot serve the request now (a read that could not be confirmed, the
/// node stopping): nothing was done; retry, here or elsewhere.
pub const UNAVAILABLE: i32 = -32022;
/// The write was not applied and never will be: a leader change replaced it, or a
/// leadership transfer is in progress. Retrying is safe.
pub const NOT_APPLIED: i32 = -32023;
/// The leader is holding back: too many bytes of writes are proposed and not yet
/// committed (`RaftConfig::max_uncommitted_bytes`). Nothing was proposed: retry
/// later (with backoff), on the same node.
pub const BACKPRESSURE: i32 = -32024;
/// The write's client session is unknown or expired (sessions expire after two
/// minutes without a command, in log time): nothing was applied now. Open a new
/// session; a write first sent under the old one may or may not have been applied.
pub const SESSION_EXPIRED: i32 = -32025;
/// A missing or wrong token (an admin token on `easyraft-server`); HTTP 401.
pub const UNAUTHORIZED: i32 = -32030;
/// A membership change was refused: `data = {reason}`, `reason` one of
/// [`MEMBERSHIP_REASONS`].
pub const MEMBERSHIP_REFUSED: i32 = -32031;
/// The `reason`s of [`MEMBERSHIP_REFUSED`].
pub const MEMBERSHIP_REASONS: [&str; 5] = [
    "last_voter",
    "change_in_progress",
    "unknown_member",
    "already_member",
    "not_caught_up",
];
/// The request is valid JSON-RPC but makes no sense for the service (JSON-RPC's
/// "invalid params").
pub const BAD_REQUEST: i32 = -32602;
/// The method is not served (a service not configured, or not implemented yet).
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Not a JSON-RPC request object.
pub const INVALID_REQUEST: i32 = -32600;
/// Not JSON.
pub const PARSE_ERROR: i32 = -32700;
