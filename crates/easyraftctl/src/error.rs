//! What can go wrong, each error naming the endpoint it came from, and the exit code
//! it maps to.

use std::path::PathBuf;

/// The process exit codes of `easyraftctl` (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: the cluster refused or failed the request (a JSON-RPC error that is not
    /// retried, retries that ran out of time, an answer that makes no sense), or a
    /// local error (writing the snapshot file).
    Error = 1,
    /// 2: bad usage (unknown flag, bad value, missing argument).
    Usage = 2,
    /// 3: no endpoint could be reached (connection refused, timed out).
    Unreachable = 3,
    /// 4: a write's outcome is unknown: it may or may not have been applied.
    UnknownOutcome = 4,
    /// 5: the cluster answered, and the answer is "no": a compare-and-swap that did
    /// not swap, a lock not granted or not held, a node that is not healthy.
    NotMet = 5,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error of one command.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
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
        last: Box<CtlError>,
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

impl CtlError {
    /// The exit code this error maps to.
    pub fn exit(&self) -> Exit {
        match self {
            CtlError::Usage(_) => Exit::Usage,
            CtlError::Unreachable { .. } => Exit::Unreachable,
            CtlError::UnknownOutcome { .. } => Exit::UnknownOutcome,
            CtlError::Deadline { last, .. } => match last.exit() {
                Exit::Unreachable => Exit::Unreachable,
                Exit::UnknownOutcome => Exit::UnknownOutcome,
                _ => Exit::Error,
            },
            _ => Exit::Error,
        }
    }

    /// The JSON-RPC error code, if the cluster answered one.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            CtlError::Rpc { code, .. } => Some(*code),
            CtlError::Deadline { last, .. } => last.rpc_code(),
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
    let meaning = match code {
        -32020 => "not the leader",
        -32021 => "outcome unknown",
        -32022 => "unavailable",
        -32023 => "not applied",
        -32024 => "backpressure",
        -32030 => "unauthorized (check the admin token)",
        -32031 => "membership change refused",
        -32601 => "method not found (is this service enabled on the server?)",
        -32602 => "invalid params",
        -32600 => "invalid request",
        -32700 => "parse error",
        _ => return message.to_string(),
    };
    if message.is_empty() {
        meaning.to_string()
    } else {
        format!("{meaning}: {message}")
    }
}

fn describe_data(code: i64, data: Option<&serde_json::Value>) -> String {
    match (code, data) {
        (-32031, Some(d)) => match d.get("reason").and_then(|r| r.as_str()) {
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
    fn messages_name_the_endpoint_and_exit_codes_follow_the_kind() {
        let e = CtlError::Rpc {
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
        assert_eq!(e.exit(), Exit::Error);
        let u = CtlError::Unreachable {
            attempts: vec![("a:1".into(), "refused".into()), ("b:2".into(), "timed out".into())],
        };
        assert!(u.to_string().contains("a:1 (refused), b:2 (timed out)"), "{u}");
        assert_eq!(u.exit(), Exit::Unreachable);
        let d = CtlError::Deadline {
            elapsed_ms: 10,
            tries: 3,
            last: Box::new(u),
        };
        assert_eq!(d.exit(), Exit::Unreachable);
        assert_eq!(Exit::UnknownOutcome.code(), 4);
    }
}
