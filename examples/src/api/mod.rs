//! What the services share: the node they run on ([`Node`], a handle built
//! once the node has started), the mapping of Raft errors to JSON-RPC errors, and [`Hosts`], which
//! lets a service's API run over any state machine that carries the service (the
//! service's own, or one combining several, as `easyraft-server` does).
//!
//! The pieces: the node and its error mapping (`node`), [`Hosts`] (`hosts`), a write's
//! place in its client session ([`Stamp`], `stamp`), the typed params (`params`), and
//! the snapshot encoding (`snapshot`).

mod hosts;
mod node;
mod params;
mod snapshot;
mod stamp;

/// The error codes the services answer with, defined once in the client crate.
pub use easyraft_client::codes::{
    BACKPRESSURE, BAD_REQUEST, NOT_APPLIED, NOT_LEADER, SESSION_EXPIRED, UNAUTHORIZED, UNAVAILABLE, UNKNOWN_OUTCOME,
};
pub use hosts::Hosts;
pub use node::{now_ms, AddressLookup, Node};
pub use params::{bad, count_param, field, flag_param, opt_str_param, str_param};
pub use snapshot::{decode, encode};
pub use stamp::{session_error, Stamp};
