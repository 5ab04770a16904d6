//! An endpoint: where a member's client port listens (`host:port`, `http://host:port`).

use std::fmt;

/// The client port's default (docs/server-api.md: `listen_client` 0.0.0.0:7000).
pub const DEFAULT_PORT: u16 = 7000;

/// One member's client address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host name or IP (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// `https://`.
    pub tls: bool,
}

impl Endpoint {
    /// Parses `host:port`, `host` (port 7000), `[v6]:port`, or any of them after
    /// `http://` or `https://` (a trailing `/` is allowed).
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        Endpoint::parse_with(s, false)
    }

    /// Parses a leader hint or a member's client address: without a scheme, it is
    /// reached the way `like` is (`https://` stays `https://`).
    pub fn parse_like(s: &str, like: &Endpoint) -> Result<Endpoint, String> {
        Endpoint::parse_with(s, like.tls)
    }

    fn parse_with(s: &str, default_tls: bool) -> Result<Endpoint, String> {
        let t = s.trim();
        let (rest, tls) = if let Some(r) = t.strip_prefix("http://") {
            (r, false)
        } else if let Some(r) = t.strip_prefix("https://") {
            if !cfg!(feature = "tls") {
                return Err(format!(
                    "{t:?}: https:// needs easyraft-client built with the `tls` feature"
                ));
            }
            (r, true)
        } else if t.contains("://") {
            return Err(format!(
                "{t:?}: unknown scheme (expected host:port or http[s]://host:port)"
            ));
        } else {
            (t, default_tls)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(format!("{t:?}: expected host:port"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{t:?}: unclosed [ in an IPv6 address"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(format!("{t:?}: expected [v6]:port")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{t:?}: the host is empty"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p.parse().map_err(|_| format!("{t:?}: bad port {p:?}"))?,
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// Parses a comma-separated list, refusing an empty one.
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<Endpoint>, String> {
        let mut out: Vec<Endpoint> = Vec::new();
        for item in items.iter().flat_map(|s| s.as_ref().split(',')) {
            if item.trim().is_empty() {
                continue;
            }
            let e = Endpoint::parse(item)?;
            if !out.contains(&e) {
                out.push(e);
            }
        }
        if out.is_empty() {
            return Err("no endpoints given (--endpoints or EASYRAFT_ENDPOINTS)".into());
        }
        Ok(out)
    }

    /// `host:port`, as sent in the `Host` header and used to connect.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `host:port`, or `https://host:port`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            f.write_str("https://")?;
        }
        f.write_str(&self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_or_without_scheme_and_port() {
        let e = |s| Endpoint::parse(s).map(|e| e.to_string());
        assert_eq!(e("127.0.0.1:5001").as_deref(), Ok("127.0.0.1:5001"));
        assert_eq!(e("http://node1:7001/").as_deref(), Ok("node1:7001"));
        assert_eq!(e("node1").as_deref(), Ok("node1:7000"));
        assert_eq!(e("[::1]:80").as_deref(), Ok("[::1]:80"));
        assert_eq!(e("https://node1:7000").as_deref(), Ok("https://node1:7000"));
        let secure = Endpoint::parse("https://a:1").unwrap();
        assert!(Endpoint::parse_like("b:2", &secure).unwrap().tls);
        assert!(!Endpoint::parse_like("http://b:2", &secure).unwrap().tls);
        assert!(
            !Endpoint::parse_like("b:2", &Endpoint::parse("a:1").unwrap())
                .unwrap()
                .tls
        );
        for bad in ["", "host:x", "ftp://a", ":80", "a:1/path", "a:70000"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let list = Endpoint::parse_list(&["a:1,b:2", "a:1", ""]).unwrap();
        assert_eq!(list.len(), 2);
        assert!(Endpoint::parse_list::<&str>(&[]).is_err());
    }
}
