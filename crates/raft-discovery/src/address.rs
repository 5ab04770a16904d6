//! `NodeAddress`: a host (name or IP) and a port.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a node listens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeAddress {
    /// A host name or IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl NodeAddress {
    /// An address from host and port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        NodeAddress {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A `host:port` string that does not parse.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("expected host:port, got {0:?}")]
pub struct ParseAddressError(pub String);

impl FromStr for NodeAddress {
    type Err = ParseAddressError;

    /// Parses `host:port` or `[v6]:port`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseAddressError(s.to_string());
        let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(err());
        }
        let port = port.parse().map_err(|_| err())?;
        Ok(NodeAddress::new(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_host_port() {
        let a: NodeAddress = "127.0.0.1:5001".parse().unwrap();
        assert_eq!(a, NodeAddress::new("127.0.0.1", 5001));
        assert_eq!(a.to_string(), "127.0.0.1:5001");
        let v6: NodeAddress = "[::1]:7".parse().unwrap();
        assert_eq!((v6.host.as_str(), v6.to_string()), ("::1", "[::1]:7".to_string()));
        for bad in ["", "host", ":80", "h:99999", "h:x"] {
            assert!(bad.parse::<NodeAddress>().is_err(), "{bad}");
        }
    }
}
