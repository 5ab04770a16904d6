//! The checks of a configuration that its types cannot make: required keys, keys that
//! must agree, addresses and URLs that must parse, TLS files that must load.

use super::error::ConfigError;
use super::settings::{is_discovery_url, Config};

impl Config {
    /// Checks what types cannot: required keys and consistency.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_string(),
            reason,
        };
        if self.id.is_empty() {
            return Err(invalid("id", "is required (this node's id)".into()));
        }
        // With `join`, a fresh node outside the bootstrap set joins; without it, it
        // must be one of the founders.
        if self.join.is_none() && !self.initial_cluster.0.is_empty() && !self.initial_cluster.0.contains_key(&self.id) {
            return Err(invalid(
                "initial_cluster",
                format!("does not name this node ({}), and no join is given", self.id),
            ));
        }
        if let Some(join) = &self.join {
            if is_discovery_url(join) {
                easyraft::discovery::discovery_from_url(join).map_err(|e| invalid("join", e.to_string()))?;
            } else {
                let addrs: Vec<&str> = join.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
                if addrs.is_empty() {
                    return Err(invalid(
                        "join",
                        "names no member (host:port[,host:port...] or a discovery URL)".into(),
                    ));
                }
                for a in addrs {
                    a.parse::<easyraft::discovery::NodeAddress>()
                        .map_err(|e| invalid("join", format!("{a:?}: {e}")))?;
                }
            }
        }
        if self.services.is_empty() {
            return Err(invalid("services", "lists no service".into()));
        }
        self.services.sort();
        self.services.dedup();
        if self.replaces.is_some() && (self.join.is_none() || self.learner) {
            return Err(invalid(
                "replaces",
                "needs join (the cluster to join) and learner = false (the new node becomes a voter)".into(),
            ));
        }
        if self.raft.quiesce {
            // Nothing would wake a quiesced follower of the server's one group if
            // its leader died: quiescence needs a host's liveness beats.
            return Err(invalid(
                "raft.quiesce",
                "is for the groups of a multi-group host (docs/multi-raft.md), not a server's one group".into(),
            ));
        }
        if self.bootstrap_expect == Some(0) {
            return Err(invalid("bootstrap_expect", "must be at least 1".into()));
        }
        if let Some(url) = &self.discovery {
            easyraft::discovery::discovery_from_url(url).map_err(|e| invalid("discovery", e.to_string()))?;
        }
        for (key, addr) in [
            ("advertise_peer", &self.advertise_peer),
            ("advertise_client", &self.advertise_client),
        ] {
            if let Some(a) = addr {
                a.parse::<easyraft::discovery::NodeAddress>()
                    .map_err(|e| invalid(key, e.to_string()))?;
            }
        }
        if let Some(tls) = &self.tls {
            crate::tls::peer_tls(tls)?;
        }
        if let Some(tls) = &self.client_tls {
            crate::tls::client_port_tls(tls)?;
            crate::client::Caller::new(Some(tls.trusted())).map_err(|e| invalid("client_tls.ca", e))?;
        }
        self.raft
            .clone()
            .core_config(&self.id.as_str().into(), 0)
            .map_err(|e| invalid("raft", e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::settings::{Config, InitialCluster};

    #[test]
    fn inconsistent_settings_are_refused_with_their_key() {
        let mut c = Config {
            id: "n3".into(),
            initial_cluster: InitialCluster([("n1".to_string(), "h:1".to_string())].into()),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("initial_cluster"));
        let mut c = Config::default();
        assert!(c.validate().unwrap_err().to_string().contains("id"));
    }

    #[test]
    fn join_takes_addresses_or_a_discovery_url_and_may_name_a_node_outside_the_bootstrap_set() {
        let with_join = |join: &str| Config {
            id: "n4".into(),
            join: Some(join.into()),
            initial_cluster: InitialCluster([("n1".to_string(), "h:1".to_string())].into()),
            ..Config::default()
        };
        for good in [
            "10.0.0.1:7000",
            "10.0.0.1:7000, 10.0.0.2:7000",
            "dns+srv://_client._tcp.easyraft.default.svc.cluster.local?nameserver=127.0.0.1:53",
            "static:n1=127.0.0.1:7000",
        ] {
            with_join(good).validate().unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for (bad, says) in [
            ("10.0.0.1", "10.0.0.1"),
            (" , ", "names no member"),
            ("dns+srv://x?colour=red", "unknown parameter"),
        ] {
            let e = with_join(bad).validate().unwrap_err().to_string();
            assert!(e.contains("`join`") && e.contains(says), "{bad}: {e}");
        }
    }
}
