//! What can go wrong, each error naming the endpoint it came from.

use std::path::PathBuf;

/// An error of one call (or of the settings of a client).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage found after parsing (an endpoint that does not parse, a token file
    /// that is empty).
    #[error("{0}")]
    Usage(String),
    /// The endpoint answered a JSON-RPC error that is not retried.
    #[error("{endpoint}: {method}: {} (code {code}){}", describe_code(*code, message), describe_data(*code, data.as_ref()))]
    Rpc {
        /// Who answered.
        endpoint: String,
        /// The method called.
        method: String,
        /// The JSON-RPC error code.
        code: i64,
        /// The error's message.
        message: String,
        /// The error's data, if any.
        data: Option<serde_json::Value>,
    },
    /// An HTTP answer that is not JSON-RPC (a 401 from a proxy, a 404 from an old server).
    #[error("{endpoint}: {what}: HTTP {status}: {body}")]
    Http {
        /// Who answered.
        endpoint: String,
        /// The method or path asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No endpoint could be reached.
    #[error("no endpoint reachable: {}", list(attempts))]
    Unreachable {
        /// Each endpoint tried, with the last reason it failed.
        attempts: Vec<(String, String)>,
    },
    /// A write was sent and its outcome is unknown.
    #[error(
        "{endpoint}: {method}: OUTCOME UNKNOWN: {reason}. The write may or may not have been applied: \
         read the state before retrying"
    )]
    UnknownOutcome {
        /// Where the write was sent.
        endpoint: String,
        /// The method.
        method: String,
        /// Why the outcome is unknown.
        reason: String,
    },
    /// The retries ran out of time.
    #[error("gave up after {elapsed_ms} ms ({tries} tries): {last}")]
    Deadline {
        /// How long was spent.
        elapsed_ms: u128,
        /// How many attempts were made.
        tries: u32,
        /// The last failure.
        last: Box<Error>,
    },
    /// An answer that does not have the shape of the contract.
    #[error("{endpoint}: {what}: unexpected answer: {reason}")]
    BadAnswer {
        /// Who answered.
        endpoint: String,
        /// The method or path asked.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local file error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// The JSON-RPC error code, if the cluster answered one.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            Error::Deadline { last, .. } => last.rpc_code(),
            _ => None,
        }
    }
}

fn list(attempts: &[(String, String)]) -> String {
    if attempts.is_empty() {
        return "no endpoints given".into();
    }
    attempts
        .iter()
        .map(|(e, r)| format!("{e} ({r})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The contract's meaning of an error code, in front of the server's message.
fn describe_code(code: i64, message: &str) -> String {
    use crate::codes::*;
    let meaning = match i32::try_from(code).unwrap_or(i32::MIN) {
        NOT_LEADER => "not the leader",
        UNKNOWN_OUTCOME => "outcome unknown",
        UNAVAILABLE => "unavailable",
        NOT_APPLIED => "not applied",
        BACKPRESSURE => "backpressure",
        UNAUTHORIZED => "unauthorized (check the admin token)",
        MEMBERSHIP_REFUSED => "membership change refused",
        METHOD_NOT_FOUND => "method not found (is this service enabled on the server?)",
        BAD_REQUEST => "invalid params",
        INVALID_REQUEST => "invalid request",
        PARSE_ERROR => "parse error",
        _ => return message.to_string(),
    };
    if message.is_empty() {
        meaning.to_string()
    } else {
        format!("{meaning}: {message}")
    }
}

fn describe_data(code: i64, data: Option<&serde_json::Value>) -> String {
    match (i32::try_from(code), data) {
        (Ok(crate::codes::MEMBERSHIP_REFUSED), Some(d)) => match d.get("reason").and_then(|r| r.as_str()) {
            Some(reason) => format!(" [reason: {reason}]"),
            None => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_endpoint() {
        let e = Error::Rpc {
            endpoint: "10.0.0.1:7000".into(),
            method: "admin_remove".into(),
            code: -32031,
            message: "refused".into(),
            data: Some(serde_json::json!({"reason": "last_voter"})),
        };
        let shown = e.to_string();
        assert!(
            shown.contains("10.0.0.1:7000") && shown.contains("last_voter"),
            "{shown}"
        );
        let u = Error::Unreachable {
            attempts: vec![("a:1".into(), "refused".into()), ("b:2".into(), "timed out".into())],
        };
        assert!(u.to_string().contains("a:1 (refused), b:2 (timed out)"), "{u}");
        let d = Error::Deadline {
            elapsed_ms: 10,
            tries: 3,
            last: Box::new(u),
        };
        assert_eq!(d.rpc_code(), None);
    }
}
