//! A configuration that cannot be used, and where the setting at fault came from: each
//! error names the key, file or origin it is about.

use std::path::PathBuf;

use thiserror::Error;

/// A configuration that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse, or a value in it has the wrong type.
    #[error("{}:{line}: key `{key}`: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The dotted key on that line (`raft.election_timeout`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An environment variable or flag has a bad value.
    #[error("{origin}: key `{key}`: {reason}")]
    Override {
        /// The dotted key.
        key: String,
        /// The variable or flag.
        origin: Origin,
        /// What is wrong.
        reason: String,
    },
    /// The settings are inconsistent or incomplete.
    #[error("key `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A token file cannot be read or is empty.
    #[error("key `{key}`: {}: {reason}", path.display())]
    TokenFile {
        /// `peer_token_file` or `admin_token_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A bug: the configuration could not be converted.
    #[error("internal: {0}")]
    Internal(String),
}

/// Where a setting came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(v) => write!(f, "flag {v}"),
        }
    }
}
