//! One JSON-RPC call: the request ([`Call`]: method, params and what the retry policy
//! needs to know of it), and what an answer body says ([`parse_answer`]) and who gave
//! it ([`Reply`]).

use std::time::Duration;

use serde_json::{json, Value};

use crate::endpoint::Endpoint;
use crate::policy::CallKind;

/// One JSON-RPC call to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The method.
    pub method: &'static str,
    /// The params (by name).
    pub params: Value,
    /// What it does, for the retry policy.
    pub kind: CallKind,
    /// Whether it needs the admin token.
    pub admin: bool,
    /// Time the server may take on top of the usual call timeout (a lock wait, a
    /// watch, a replace that waits for a catch-up).
    pub extra_time: Duration,
}

impl Call {
    /// A call of `kind` with `params`.
    pub fn new(method: &'static str, kind: CallKind, params: Value) -> Call {
        Call {
            method,
            params,
            kind,
            admin: false,
            extra_time: Duration::ZERO,
        }
    }

    /// The same call, needing the admin token.
    pub fn admin(mut self) -> Call {
        self.admin = true;
        self
    }

    /// The same call, allowing the server `extra` more time.
    pub fn with_extra_time(mut self, extra: Duration) -> Call {
        self.extra_time = extra;
        self
    }

    /// The JSON-RPC request body.
    pub fn body(&self) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": self.method, "params": self.params})
    }
}

/// A result, with the endpoint that gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// Who answered.
    pub endpoint: Endpoint,
    /// The JSON-RPC result.
    pub result: Value,
}

/// What one JSON-RPC answer body says.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    /// A result.
    Result(Value),
    /// An error.
    Error {
        /// The code.
        code: i64,
        /// The message.
        message: String,
        /// The data.
        data: Option<Value>,
    },
}

/// Reads a JSON-RPC answer body; `None` if it is not one.
pub fn parse_answer(body: &[u8]) -> Option<Parsed> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if let Some(e) = v.get("error") {
        return Some(Parsed::Error {
            code: e.get("code").and_then(Value::as_i64)?,
            message: e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
            data: e.get("data").cloned().filter(|d| !d.is_null()),
        });
    }
    v.get("result").cloned().map(Parsed::Result)
}

/// The start of a body, for an error message.
pub fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_results_and_errors() {
        assert_eq!(
            parse_answer(br#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#),
            Some(Parsed::Result(json!({"ok": true})))
        );
        let e = parse_answer(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"not the leader","data":{"leader":"n2","address":"127.0.0.1:9"}}}"#,
        );
        assert_eq!(
            e,
            Some(Parsed::Error {
                code: -32020,
                message: "not the leader".into(),
                data: Some(json!({"leader": "n2", "address": "127.0.0.1:9"}))
            })
        );
        assert_eq!(parse_answer(b"missing or wrong cluster token"), None);
        assert_eq!(parse_answer(br#"{"error":{"message":"no code"}}"#), None);
        let body = Call::new("kv_get", CallKind::Read, json!({"key": "a"})).body();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 1, "method": "kv_get", "params": {"key": "a"}})
        );
        assert_eq!(snippet("x".repeat(300).as_bytes()).len(), 203);
    }
}
