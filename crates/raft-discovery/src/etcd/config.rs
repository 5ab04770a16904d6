//! The settings of the etcd discovery: where etcd is, the key prefix, the lease TTL
//! and the time bounds.

use std::time::Duration;

/// Settings of [`EtcdServiceDiscovery`](super::EtcdServiceDiscovery).
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client endpoints as `host:port` (plain HTTP), tried in turn.
    pub endpoints: Vec<String>,
    /// The key prefix: node `id` is the key `{prefix}/{id}`.
    pub prefix: String,
    /// The TTL of registrations: a node that stops renewing disappears after it.
    /// etcd counts in whole seconds (at least 1; etcd may round small TTLs up).
    pub lease_ttl: Duration,
    /// The longest any single request to etcd may take.
    pub timeout: Duration,
    /// How long reads are answered from the last view while etcd is unreachable.
    pub stale_grace: Duration,
}

impl EtcdConfig {
    /// Nodes under `prefix` in the etcd at `endpoint` (`host:port`).
    pub fn new(endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        EtcdConfig {
            endpoints: vec![endpoint.into()],
            prefix: normalize_prefix(&prefix.into()),
            lease_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            stale_grace: Duration::from_secs(60),
        }
    }

    /// Sets the endpoints tried in turn.
    pub fn with_endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`stale_grace`](Self::stale_grace).
    pub fn with_stale_grace(mut self, grace: Duration) -> Self {
        self.stale_grace = grace;
        self
    }

    pub(super) fn ttl_secs(&self) -> i64 {
        (self.lease_ttl.as_secs_f64().ceil() as i64).max(1)
    }

    pub(super) fn keepalive_every(&self) -> Duration {
        (self.lease_ttl / 3).max(Duration::from_millis(200))
    }
}

/// `easyraft`, `/easyraft/` and `/easyraft` are all `/easyraft`.
fn normalize_prefix(p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        for p in ["easyraft", "/easyraft", "/easyraft/", "easyraft/"] {
            assert_eq!(normalize_prefix(p), "/easyraft");
        }
        let cfg = EtcdConfig::new("127.0.0.1:2379", "x").with_lease_ttl(Duration::from_millis(1500));
        assert_eq!(cfg.ttl_secs(), 2);
    }
}
