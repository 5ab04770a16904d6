//! `discovery_from_url`: any backend from one string, so a configuration file or a
//! flag can name it.

use std::sync::Arc;
use std::time::Duration;

use crate::{DiscoveryError, FileServiceDiscovery, NodeAddress, ServiceDiscovery, StaticServiceDiscovery};

/// The accepted forms, as printed in [`DiscoveryError::InvalidUrl`].
pub const URL_FORMATS: &[&str] = &[
    "static:node1=127.0.0.1:5001,node2=127.0.0.1:5002",
    "dns://.cluster.local:8080[?nameserver=IP:PORT&timeout=3s&grace=60s&nodes=node1,node2]",
    "dns+srv://_raft._tcp.example.test[?nameserver=IP:PORT&timeout=3s&grace=60s]",
    "file://cluster.json (or file:///absolute/path.json)",
    "etcd://127.0.0.1:2379[,HOST:PORT...]/prefix[?ttl=10s&timeout=3s&grace=60s]",
];

/// Builds a discovery from a URL-like string:
///
/// | string | backend |
/// |---|---|
/// | `static:node1=127.0.0.1:5001,node2=127.0.0.1:5002` | [`StaticServiceDiscovery`] |
/// | `dns://.cluster.local:8080` | `DnsServiceDiscovery`, node `id` at `{id}.cluster.local`, port 8080 |
/// | `dns+srv://_raft._tcp.example.test` | `DnsServiceDiscovery` over the SRV records at that name |
/// | `file://cluster.json` | [`FileServiceDiscovery`] (the file must exist) |
/// | `etcd://127.0.0.1:2379/easyraft` | `EtcdServiceDiscovery` under the prefix `/easyraft` |
///
/// `dns` and `dns+srv` take `?nameserver=127.0.0.1:5353` (else the system's),
/// `timeout=`, `grace=` (durations like `500ms`, `3s`) and, for `dns`,
/// `nodes=node1,node2` (what `get_all_node_addresses` lists). `etcd` takes `ttl=`,
/// `timeout=` and `grace=`. Anything else is a [`DiscoveryError::InvalidUrl`] that
/// says what was expected. `dns` needs the crate feature `dns`, `etcd` the feature
/// `etcd` (both on in the `easyraft` facade).
pub fn discovery_from_url(url: &str) -> Result<Arc<dyn ServiceDiscovery>, DiscoveryError> {
    let bad = |reason: String| DiscoveryError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("static:") {
        return parse_static(rest).map_err(bad);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("no scheme (static:, dns://, dns+srv://, file:// or etcd://)".into()));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            if rest.is_empty() {
                return Err(bad("file:// needs a path".into()));
            }
            Ok(Arc::new(FileServiceDiscovery::open(rest)?))
        }
        "dns" | "dns+srv" => dns(scheme == "dns+srv", rest).map_err(bad)?,
        "etcd" => etcd(rest).map_err(bad)?,
        other => Err(bad(format!("unknown scheme {other:?}"))),
    }
}

fn parse_static(rest: &str) -> Result<Arc<dyn ServiceDiscovery>, String> {
    let mut nodes = Vec::new();
    for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not id=host:port"))?;
        if id.is_empty() {
            return Err(format!("{pair:?} has an empty node id"));
        }
        let addr: NodeAddress = addr.parse().map_err(|e| format!("node {id}: {e}"))?;
        if nodes.iter().any(|(n, _): &(String, NodeAddress)| n == id) {
            return Err(format!("node {id} is named twice"));
        }
        nodes.push((id.to_string(), addr));
    }
    if nodes.is_empty() {
        return Err("static: lists no nodes".into());
    }
    Ok(Arc::new(StaticServiceDiscovery::new(nodes)))
}

/// The part before `?` and the `key=value` pairs after it.
#[cfg_attr(not(any(feature = "dns", feature = "etcd")), allow(dead_code))]
type Split<'a> = (&'a str, Vec<(&'a str, &'a str)>);

/// `key=value&...` after a `?`, if any.
#[cfg_attr(not(any(feature = "dns", feature = "etcd")), allow(dead_code))]
fn split_query(rest: &str) -> Result<Split<'_>, String> {
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("query parameter {kv:?} is not key=value"))?;
        params.push((k, v));
    }
    Ok((main, params))
}

/// `1500ms`, `3s`, `2m`, or a bare number of seconds.
#[cfg_attr(not(any(feature = "dns", feature = "etcd")), allow(dead_code))]
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("{s:?} is not a duration (like 500ms, 3s or 1m)");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(err()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

#[cfg(not(feature = "dns"))]
fn dns(_srv: bool, _rest: &str) -> Result<Result<Arc<dyn ServiceDiscovery>, DiscoveryError>, String> {
    Err("raft-discovery was built without its `dns` feature".into())
}

#[cfg(feature = "dns")]
fn dns(srv: bool, rest: &str) -> Result<Result<Arc<dyn ServiceDiscovery>, DiscoveryError>, String> {
    use crate::{DnsConfig, DnsServiceDiscovery};

    let (main, params) = split_query(rest)?;
    let main = main.trim_end_matches('/');
    let mut cfg = if srv {
        if main.is_empty() {
            return Err("dns+srv:// needs the SRV name, like _raft._tcp.example.test".into());
        }
        DnsConfig::srv(main)
    } else {
        let (suffix, port) = main
            .rsplit_once(':')
            .ok_or_else(|| "dns:// needs a suffix and a port, like .cluster.local:8080".to_string())?;
        let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port"))?;
        if suffix.is_empty() {
            return Err("dns:// needs a name suffix before the port, like .cluster.local:8080".into());
        }
        DnsConfig::suffix(suffix, port)
    };
    for (k, v) in params {
        match k {
            "nameserver" => cfg.name_server = Some(v.parse().map_err(|_| format!("nameserver={v:?} is not IP:PORT"))?),
            "timeout" => cfg.timeout = parse_duration(v)?,
            "grace" => cfg.grace = parse_duration(v)?,
            "nodes" if !srv => cfg = cfg.with_nodes(v.split(',').filter(|s| !s.is_empty())),
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(DnsServiceDiscovery::new(cfg).map(|d| Arc::new(d) as Arc<dyn ServiceDiscovery>))
}

#[cfg(not(feature = "etcd"))]
fn etcd(_rest: &str) -> Result<Result<Arc<dyn ServiceDiscovery>, DiscoveryError>, String> {
    Err("raft-discovery was built without its `etcd` feature".into())
}

#[cfg(feature = "etcd")]
fn etcd(rest: &str) -> Result<Result<Arc<dyn ServiceDiscovery>, DiscoveryError>, String> {
    use crate::{EtcdConfig, EtcdServiceDiscovery};

    let (main, params) = split_query(rest)?;
    let (hosts, prefix) = main.split_once('/').unwrap_or((main, ""));
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Err("etcd:// needs a key prefix after the endpoint, like etcd://127.0.0.1:2379/easyraft".into());
    }
    let mut endpoints = Vec::new();
    for h in hosts.split(',').filter(|h| !h.is_empty()) {
        let a: NodeAddress = h.parse().map_err(|e| format!("etcd endpoint: {e}"))?;
        endpoints.push(a.to_string());
    }
    if endpoints.is_empty() {
        return Err("etcd:// needs at least one endpoint host:port".into());
    }
    let mut cfg = EtcdConfig::new(endpoints[0].clone(), prefix).with_endpoints(endpoints);
    for (k, v) in params {
        match k {
            "ttl" => cfg.lease_ttl = parse_duration(v)?,
            "timeout" => cfg.timeout = parse_duration(v)?,
            "grace" => cfg.stale_grace = parse_duration(v)?,
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(EtcdServiceDiscovery::new(cfg).map(|d| Arc::new(d) as Arc<dyn ServiceDiscovery>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match discovery_from_url(url) {
            Err(e @ DiscoveryError::InvalidUrl { .. }) => e.to_string(),
            Err(e) => panic!("{url}: not InvalidUrl: {e}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }

    #[test]
    fn bad_strings_are_typed_errors_that_say_what_was_expected() {
        for (url, says) in [
            ("", "no scheme"),
            ("cluster.json", "no scheme"),
            ("ftp://x", "unknown scheme"),
            ("static:", "lists no nodes"),
            ("static:node1", "not id=host:port"),
            ("static:node1=localhost", "expected host:port"),
            ("static:a=h:1,a=h:2", "named twice"),
            ("dns://.cluster.local", "suffix and a port"),
            ("dns://:8080", "suffix before the port"),
            ("dns://.x:99999", "not a port"),
            ("dns://.x:80?nameserver=localhost", "not IP:PORT"),
            ("dns://.x:80?timeout=soon", "not a duration"),
            ("dns://.x:80?color=red", "unknown parameter"),
            ("dns+srv://", "needs the SRV name"),
            ("file://", "needs a path"),
            ("etcd://127.0.0.1:2379", "needs a key prefix"),
            ("etcd:///easyraft", "at least one endpoint"),
            ("etcd://127.0.0.1/easyraft", "etcd endpoint"),
        ] {
            let text = reason(url);
            assert!(text.contains(says), "{url}: {text}");
            assert!(text.contains("expected one of"), "{url}: {text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn good_strings_build_each_backend() {
        let d = discovery_from_url("static:node1=127.0.0.1:5001, node2=[::1]:5002").unwrap();
        assert_eq!(
            d.get_node_address(&"node2".into()).await.unwrap(),
            NodeAddress::new("::1", 5002)
        );
        #[cfg(feature = "dns")]
        {
            discovery_from_url("dns://.cluster.local:8080?nameserver=127.0.0.1:5353&timeout=1s").unwrap();
            discovery_from_url("dns+srv://_raft._tcp.example.test?nameserver=127.0.0.1:5353").unwrap();
        }
        #[cfg(feature = "etcd")]
        discovery_from_url("etcd://127.0.0.1:2379,127.0.0.1:22379/easyraft?ttl=5s").unwrap();
        let missing = discovery_from_url("file:///nonexistent/easyraft-cluster.json");
        assert!(matches!(missing, Err(DiscoveryError::Io { .. })), "{:?}", missing.err());
    }
}
