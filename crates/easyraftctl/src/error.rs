//! The exit code each error maps to. The errors themselves are the client's
//! ([`easyraft_client::Error`], re-exported as [`CtlError`]), each naming the endpoint
//! it came from.

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
pub use easyraft_client::Error as CtlError;

/// The exit code of an error.
pub trait ExitOf {
    /// The exit code this error maps to.
    fn exit(&self) -> Exit;
}

impl ExitOf for CtlError {
    fn exit(&self) -> Exit {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind_of_error() {
        let e = CtlError::Rpc {
            endpoint: "10.0.0.1:7000".into(),
            method: "admin_remove".into(),
            code: -32031,
            message: "refused".into(),
            data: None,
        };
        assert_eq!(e.exit(), Exit::Error);
        let u = CtlError::Unreachable {
            attempts: vec![("a:1".into(), "refused".into())],
        };
        assert_eq!(u.exit(), Exit::Unreachable);
        let d = CtlError::Deadline {
            elapsed_ms: 10,
            tries: 3,
            last: Box::new(u),
        };
        assert_eq!(d.exit(), Exit::Unreachable);
        assert_eq!(CtlError::Usage("x".into()).exit(), Exit::Usage);
        assert_eq!(Exit::UnknownOutcome.code(), 4);
    }
}
