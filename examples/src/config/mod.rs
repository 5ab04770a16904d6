//! A configuration center: hierarchical keys (`app/db/url`), a version per key (the log
//! index of its last change), watches that return every change after a version, so a
//! client that reconnects with the last version it saw misses nothing, and rollback of
//! a key or a whole namespace to an earlier version, as one new version that watchers
//! see like any change.
//!
//! The pieces: the state machine with its commands and answers (`machine`) and its
//! JSON-RPC API (`rpc`).

mod machine;
mod rpc;

#[cfg(test)]
mod tests;

pub use machine::{Change, ConfigAnswer, ConfigCommand, ConfigQuery, ConfigStore, Refused, Scope, Written, HISTORY};
pub use rpc::{rpc, rpc_for};
