//! The commands: for each, the call it makes (pure, unit-tested against the contract)
//! and how its result is reported.

pub mod admin;
pub mod cluster;
pub mod config;
pub mod kv;
pub mod lock;
pub mod snapshot;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::Reply;
use crate::error::CtlError;

/// Reads `result` as a `T`, or a [`CtlError::BadAnswer`] naming who gave it.
pub fn parse<T: DeserializeOwned>(reply: &Reply, method: &str) -> Result<T, CtlError> {
    parse_value(&reply.result, &reply.endpoint.to_string(), method)
}

/// Reads `value` as a `T`, or a [`CtlError::BadAnswer`] naming `endpoint`.
pub fn parse_value<T: DeserializeOwned>(value: &Value, endpoint: &str, what: &str) -> Result<T, CtlError> {
    serde_json::from_value(value.clone()).map_err(|e| CtlError::BadAnswer {
        endpoint: endpoint.to_string(),
        what: what.to_string(),
        reason: format!("{e} in {}", crate::client::snippet(value.to_string().as_bytes())),
    })
}

/// An optional string as a cell (`-` when absent).
pub(crate) fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}
