//! The service registry: `registry_register`, `registry_heartbeat`,
//! `registry_deregister`, `registry_list`, `registry_pick`, `registry_services`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{bad_answer, ms, typed};
use crate::client::Client;
use crate::error::Error;
use crate::policy::CallKind;

/// Instances of services with leases, and consistent-hash picks among them.
#[derive(Clone, Debug)]
pub struct Registry {
    client: Client,
}

/// A registered instance's lease, or why it has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lease {
    /// Live until `expires_at` (log time), registered at log index `since`.
    Live {
        /// When the lease ends.
        expires_at: u64,
        /// The log index of the registration.
        since: u64,
    },
    /// A heartbeat for an instance whose lease ran out (or that never registered):
    /// register again.
    NotRegistered,
    /// The service has as many live instances as it may.
    Full,
}

/// A live instance.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Instance {
    /// Its id within the service.
    pub instance: String,
    /// Where it serves.
    pub address: String,
    /// Its labels.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// When its lease ends.
    pub expires_at: u64,
    /// The log index of its registration.
    pub since: u64,
}

#[derive(Deserialize)]
struct Written {
    ok: bool,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    not_registered: bool,
    #[serde(default)]
    removed: Option<bool>,
}

impl Written {
    fn lease(self, method: &str, client: &Client) -> Result<Lease, Error> {
        match (self.ok, self.expires_at, self.since, self.not_registered) {
            (true, Some(expires_at), Some(since), _) => Ok(Lease::Live { expires_at, since }),
            (false, _, _, true) => Ok(Lease::NotRegistered),
            (false, ..) => Ok(Lease::Full),
            _ => Err(bad_answer(
                client,
                method,
                "a lease without expires_at and since".into(),
            )),
        }
    }
}

#[derive(Deserialize)]
struct Listed {
    instances: Vec<Instance>,
}

#[derive(Deserialize)]
struct Services {
    services: BTreeMap<String, usize>,
}

impl Registry {
    /// The registry through `client`.
    pub fn new(client: Client) -> Registry {
        Registry { client }
    }

    /// Registers (or re-registers) `instance` of `service` at `address` with a lease of `ttl`.
    pub async fn register(
        &self,
        service: &str,
        instance: &str,
        address: &str,
        ttl: Duration,
        meta: &BTreeMap<String, String>,
    ) -> Result<Lease, Error> {
        let p = json!({"service": service, "instance": instance, "address": address,
                       "ttl_ms": ms(ttl), "meta": meta});
        let w: Written = typed(&self.client, "registry_register", CallKind::IdempotentWrite, p).await?;
        w.lease("registry_register", &self.client)
    }

    /// Extends the lease of `instance` to `ttl` from now.
    pub async fn heartbeat(&self, service: &str, instance: &str, ttl: Duration) -> Result<Lease, Error> {
        let p = json!({"service": service, "instance": instance, "ttl_ms": ms(ttl)});
        let w: Written = typed(&self.client, "registry_heartbeat", CallKind::IdempotentWrite, p).await?;
        w.lease("registry_heartbeat", &self.client)
    }

    /// Removes `instance`; `false` if it was not registered.
    pub async fn deregister(&self, service: &str, instance: &str) -> Result<bool, Error> {
        let p = json!({"service": service, "instance": instance});
        let w: Written = typed(&self.client, "registry_deregister", CallKind::IdempotentWrite, p).await?;
        Ok(w.removed == Some(true))
    }

    /// The live instances of `service` (linearizable).
    pub async fn list(&self, service: &str) -> Result<Vec<Instance>, Error> {
        let l: Listed = typed(
            &self.client,
            "registry_list",
            CallKind::Read,
            json!({"service": service}),
        )
        .await?;
        Ok(l.instances)
    }

    /// The live instance of `service` that `key` goes to: the same on every member,
    /// and it moves only when that instance leaves.
    pub async fn pick(&self, service: &str, key: &str) -> Result<Option<Instance>, Error> {
        let p = json!({"service": service, "key": key});
        let v: serde_json::Value = typed(&self.client, "registry_pick", CallKind::Read, p).await?;
        if v.get("instance").is_some_and(serde_json::Value::is_null) {
            return Ok(None);
        }
        serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| bad_answer(&self.client, "registry_pick", format!("{e}: {v}")))
    }

    /// The services with live instances, with their counts.
    pub async fn services(&self) -> Result<BTreeMap<String, usize>, Error> {
        let s: Services = typed(&self.client, "registry_services", CallKind::Read, json!({})).await?;
        Ok(s.services)
    }
}
