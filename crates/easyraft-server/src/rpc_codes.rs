//! The JSON-RPC error codes of docs/server-api.md (defined in `easyraft_client::codes`).

pub use easyraft_client::codes::{
    BACKPRESSURE, BAD_REQUEST, MEMBERSHIP_REASONS as REASONS, MEMBERSHIP_REFUSED, METHOD_NOT_FOUND, NOT_APPLIED,
    NOT_LEADER, UNAUTHORIZED, UNAVAILABLE, UNKNOWN_OUTCOME,
};
