//! The registry's state machine: each service's instances with their leases in log
//! time, and the commands, queries and answers.

use std::collections::BTreeMap;

use easyraft::{BoxError, LogIndex, StateMachine};
use serde::{Deserialize, Serialize};

use super::rendezvous::rendezvous;
use crate::api::{decode, encode};

/// The longest lease an instance may ask for.
pub const MAX_TTL_MS: u64 = 24 * 3600 * 1000;
/// The most instances one service may have.
pub const MAX_INSTANCES: usize = 10_000;

/// One registered instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Where it serves (`host:port`, a URL: the registry does not interpret it).
    pub address: String,
    /// Free-form labels (zone, version, weight...).
    pub meta: BTreeMap<String, String>,
    /// When its lease ends, in log time (milliseconds).
    pub expires_at: u64,
    /// The log index of its registration (a new registration after expiry gets a new one).
    pub since: LogIndex,
}

/// The registry's state.
#[derive(Default, Serialize, Deserialize)]
pub struct Registry {
    services: BTreeMap<String, BTreeMap<String, Instance>>,
    /// The highest timestamp applied: the replicas' common clock.
    now: u64,
}

/// A write; `now_ms` is stamped by the node that proposes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RegistryCommand {
    /// Registers (or re-registers, replacing address and meta) an instance.
    Register {
        /// The service.
        service: String,
        /// The instance's id, unique within the service.
        instance: String,
        /// Where it serves.
        address: String,
        /// Labels.
        meta: BTreeMap<String, String>,
        /// The lease from now.
        ttl_ms: u64,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Extends a live instance's lease.
    Heartbeat {
        /// The service.
        service: String,
        /// The instance.
        instance: String,
        /// The new lease from now.
        ttl_ms: u64,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Removes an instance.
    Deregister {
        /// The service.
        service: String,
        /// The instance.
        instance: String,
        /// The proposer's clock.
        now_ms: u64,
    },
}

/// A write's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryResult {
    /// Registered or renewed: the instance as it is now.
    Live(Instance),
    /// A heartbeat for an instance that is not registered or whose lease ran out: it
    /// must register again.
    NotRegistered,
    /// Deregistered (`false`: it was not registered).
    Removed(bool),
    /// The service has [`MAX_INSTANCES`] live instances already.
    Full,
}

/// A read, with the reader's clock.
#[derive(Clone, Debug)]
pub enum RegistryQuery {
    /// The live instances of a service.
    List {
        /// The service.
        service: String,
        /// The reader's clock.
        now_ms: u64,
    },
    /// The live instance a key goes to.
    Pick {
        /// The service.
        service: String,
        /// The key (a user id, a shard...).
        key: String,
        /// The reader's clock.
        now_ms: u64,
    },
    /// The services that have live instances.
    Services {
        /// The reader's clock.
        now_ms: u64,
    },
}

/// A read's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryAnswer {
    /// Instances by id.
    Instances(BTreeMap<String, Instance>),
    /// The picked instance, if any is live.
    Picked(Option<(String, Instance)>),
    /// Service names with their live instance counts.
    Services(BTreeMap<String, usize>),
}

impl Registry {
    fn live_at(&self, service: &str, now: u64) -> impl Iterator<Item = (&String, &Instance)> {
        self.services
            .get(service)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |(_, i)| i.expires_at > now)
    }

    /// Forgets the instances of `service` whose lease ended (keeps each service
    /// bounded; only the service a write touches is swept, so a write costs its own
    /// service's size, not the registry's).
    fn expire(&mut self, service: &str) {
        let now = self.now;
        if let Some(m) = self.services.get_mut(service) {
            m.retain(|_, i| i.expires_at > now);
            if m.is_empty() {
                self.services.remove(service);
            }
        }
    }
}

impl StateMachine for Registry {
    type Command = RegistryCommand;
    type Response = RegistryResult;
    type Query = RegistryQuery;
    type QueryResponse = RegistryAnswer;

    fn apply(&mut self, index: LogIndex, cmd: RegistryCommand) -> RegistryResult {
        let (stamp, service) = match &cmd {
            RegistryCommand::Register { now_ms, service, .. }
            | RegistryCommand::Heartbeat { now_ms, service, .. }
            | RegistryCommand::Deregister { now_ms, service, .. } => (*now_ms, service.clone()),
        };
        self.now = self.now.max(stamp);
        self.expire(&service);
        let now = self.now;
        match cmd {
            RegistryCommand::Register {
                service,
                instance,
                address,
                meta,
                ttl_ms,
                ..
            } => {
                let m = self.services.entry(service).or_default();
                let since = match m.get(&instance) {
                    Some(i) => i.since,
                    None if m.len() >= MAX_INSTANCES => return RegistryResult::Full,
                    None => index,
                };
                let i = Instance {
                    address,
                    meta,
                    expires_at: now.saturating_add(ttl_ms.min(MAX_TTL_MS)),
                    since,
                };
                m.insert(instance, i.clone());
                RegistryResult::Live(i)
            }
            RegistryCommand::Heartbeat {
                service,
                instance,
                ttl_ms,
                ..
            } => match self.services.get_mut(&service).and_then(|m| m.get_mut(&instance)) {
                Some(i) => {
                    i.expires_at = now.saturating_add(ttl_ms.min(MAX_TTL_MS));
                    RegistryResult::Live(i.clone())
                }
                None => RegistryResult::NotRegistered,
            },
            RegistryCommand::Deregister { service, instance, .. } => {
                let removed = self
                    .services
                    .get_mut(&service)
                    .is_some_and(|m| m.remove(&instance).is_some());
                self.expire(&service);
                RegistryResult::Removed(removed)
            }
        }
    }

    fn query(&self, q: RegistryQuery) -> RegistryAnswer {
        match q {
            RegistryQuery::List { service, now_ms } => {
                let now = self.now.max(now_ms);
                RegistryAnswer::Instances(
                    self.live_at(&service, now)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            }
            RegistryQuery::Pick { service, key, now_ms } => {
                let now = self.now.max(now_ms);
                let live: BTreeMap<&String, &Instance> = self.live_at(&service, now).collect();
                let picked = rendezvous(&key, live.keys().map(|k| k.as_str())).and_then(|id| {
                    live.get_key_value(&id.to_string())
                        .map(|(k, v)| ((*k).clone(), (*v).clone()))
                });
                RegistryAnswer::Picked(picked)
            }
            RegistryQuery::Services { now_ms } => {
                let now = self.now.max(now_ms);
                RegistryAnswer::Services(
                    self.services
                        .keys()
                        .map(|s| (s.clone(), self.live_at(s, now).count()))
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                )
            }
        }
    }

    fn snapshot(&self) -> Result<bytes::Bytes, BoxError> {
        encode(self)
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        *self = decode(data)?;
        Ok(())
    }
}
