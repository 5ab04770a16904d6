//! A service registry: instances of a service register an address with a lease (TTL)
//! and keep it alive with heartbeats; clients list the live instances of a service or
//! pick one for a key by consistent hashing (rendezvous hashing: the instance with the
//! highest hash of key and instance id), so a key keeps going to the same instance
//! while it lives, and only the keys of an instance that leaves move.
//!
//! Time comes from the log, as in [`crate::lock`]: each write carries the stamping
//! node's clock (`now_ms`) and the state machine keeps the highest stamp as "now", so
//! every replica expires the same instances. A read also passes the reading node's
//! clock, so an instance whose lease ran out is not listed even when no write has
//! advanced the log's time since.

use std::collections::BTreeMap;
use std::sync::Arc;

use easyraft::{BoxError, LogIndex, StateMachine};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{bad, decode, encode, field, now_ms, Hosts, Node};

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

/// FNV-1a, 64 bits, then MurmurHash3's 64-bit finalizer (FNV alone mixes short,
/// similar strings poorly): stable across builds and platforms, so a client can
/// compute the same pick, unlike `std`'s hasher.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The rendezvous choice for `key` among `instances`: the highest hash of (key,
/// instance id), ties broken by id.
pub fn rendezvous<'a, I>(key: &str, instances: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    instances.into_iter().max_by_key(|id| (hash(&[key, id]), *id))
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

fn instance_json(id: &str, i: &Instance) -> Value {
    json!({"instance": id, "address": i.address, "meta": i.meta, "expires_at": i.expires_at, "since": i.since})
}

fn written(r: RegistryResult) -> Value {
    match r {
        RegistryResult::Live(i) => json!({"ok": true, "expires_at": i.expires_at, "since": i.since}),
        RegistryResult::NotRegistered => json!({"ok": false, "not_registered": true}),
        RegistryResult::Removed(removed) => json!({"ok": true, "removed": removed}),
        RegistryResult::Full => json!({"ok": false, "full": true, "limit": MAX_INSTANCES}),
    }
}

fn name(p: &Value, key: &str) -> Result<String, ErrorObjectOwned> {
    let s: String = field(p, key)?;
    if s.is_empty() || s.len() > 256 {
        return Err(bad(format!("`{key}` must be 1 to 256 bytes")));
    }
    Ok(s)
}

/// The registry API: `registry_register {service, instance, address, ttl_ms, meta?}`,
/// `registry_heartbeat {service, instance, ttl_ms}` (`ok: false, not_registered: true`
/// once the lease ran out: register again), `registry_deregister {service, instance}`
/// (all three idempotent), and the linearizable reads `registry_list {service}`,
/// `registry_pick {service, key}` and `registry_services {}`.
pub fn rpc(node: Node<Registry>) -> RpcModule<Node<Registry>> {
    rpc_for(node)
}

/// [`rpc`] over any state machine that carries the registry (see [`Hosts`]).
pub fn rpc_for<M: Hosts<Registry>>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let _ = m.register_async_method(
        "registry_register",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let meta: BTreeMap<String, String> = match p.get("meta") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(_) => field(&p, "meta")?,
            };
            let cmd = RegistryCommand::Register {
                service: name(&p, "service")?,
                instance: name(&p, "instance")?,
                address: field(&p, "address")?,
                meta,
                ttl_ms: field(&p, "ttl_ms")?,
                now_ms: now_ms(),
            };
            Ok::<_, ErrorObjectOwned>(written(node.propose::<Registry>(&p, cmd).await?))
        },
    );
    let _ = m.register_async_method(
        "registry_heartbeat",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = RegistryCommand::Heartbeat {
                service: name(&p, "service")?,
                instance: name(&p, "instance")?,
                ttl_ms: field(&p, "ttl_ms")?,
                now_ms: now_ms(),
            };
            Ok::<_, ErrorObjectOwned>(written(node.propose::<Registry>(&p, cmd).await?))
        },
    );
    let _ = m.register_async_method(
        "registry_deregister",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = RegistryCommand::Deregister {
                service: name(&p, "service")?,
                instance: name(&p, "instance")?,
                now_ms: now_ms(),
            };
            Ok::<_, ErrorObjectOwned>(written(node.propose::<Registry>(&p, cmd).await?))
        },
    );
    let _ = m.register_async_method(
        "registry_list",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let q = RegistryQuery::List {
                service: name(&p, "service")?,
                now_ms: now_ms(),
            };
            match node.query::<Registry>(q, false).await? {
                RegistryAnswer::Instances(all) => Ok::<_, ErrorObjectOwned>(json!({
                    "instances": all.iter().map(|(id, i)| instance_json(id, i)).collect::<Vec<_>>(),
                })),
                _ => Err(bad("unexpected answer")),
            }
        },
    );
    let _ = m.register_async_method(
        "registry_pick",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let q = RegistryQuery::Pick {
                service: name(&p, "service")?,
                key: field(&p, "key")?,
                now_ms: now_ms(),
            };
            match node.query::<Registry>(q, false).await? {
                RegistryAnswer::Picked(Some((id, i))) => Ok::<_, ErrorObjectOwned>(instance_json(&id, &i)),
                RegistryAnswer::Picked(None) => Ok(json!({"instance": null})),
                _ => Err(bad("unexpected answer")),
            }
        },
    );
    let _ = m.register_async_method("registry_services", |_, node: Arc<Node<M>>, _| async move {
        let q = RegistryQuery::Services { now_ms: now_ms() };
        match node.query::<Registry>(q, false).await? {
            RegistryAnswer::Services(s) => Ok::<_, ErrorObjectOwned>(json!({ "services": s })),
            _ => Err(bad("unexpected answer")),
        }
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(r: &mut Registry, index: LogIndex, instance: &str, ttl_ms: u64, now_ms: u64) -> RegistryResult {
        r.apply(
            index,
            RegistryCommand::Register {
                service: "api".into(),
                instance: instance.into(),
                address: format!("{instance}:80"),
                meta: BTreeMap::new(),
                ttl_ms,
                now_ms,
            },
        )
    }

    fn live(r: &Registry, now_ms: u64) -> Vec<String> {
        match r.query(RegistryQuery::List {
            service: "api".into(),
            now_ms,
        }) {
            RegistryAnswer::Instances(m) => m.into_keys().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn leases_expire_by_log_time_and_heartbeats_keep_them() {
        let mut r = Registry::default();
        assert!(matches!(
            register(&mut r, 1, "a", 1000, 10_000),
            RegistryResult::Live(_)
        ));
        assert!(matches!(
            register(&mut r, 2, "b", 5000, 10_000),
            RegistryResult::Live(_)
        ));
        assert_eq!(live(&r, 10_500), ["a", "b"]);
        // A reader's clock past a's lease hides it before any write moves log time.
        assert_eq!(live(&r, 11_500), ["b"]);
        // A heartbeat within the lease extends it; after it, the instance must register again.
        let hb = |r: &mut Registry, index, instance: &str, now_ms| {
            r.apply(
                index,
                RegistryCommand::Heartbeat {
                    service: "api".into(),
                    instance: instance.into(),
                    ttl_ms: 1000,
                    now_ms,
                },
            )
        };
        assert!(matches!(hb(&mut r, 3, "b", 14_000), RegistryResult::Live(i) if i.expires_at == 15_000));
        assert_eq!(hb(&mut r, 4, "a", 14_000), RegistryResult::NotRegistered);
        // A stamp from a lagging clock cannot move time back.
        assert!(matches!(hb(&mut r, 5, "b", 1), RegistryResult::Live(i) if i.expires_at == 15_000));
        let gone = r.apply(
            6,
            RegistryCommand::Deregister {
                service: "api".into(),
                instance: "b".into(),
                now_ms: 14_500,
            },
        );
        assert_eq!(gone, RegistryResult::Removed(true));
        assert!(live(&r, 14_500).is_empty());
        // The state survives a snapshot.
        assert!(matches!(
            register(&mut r, 7, "c", 1000, 20_000),
            RegistryResult::Live(_)
        ));
        let mut back = Registry::default();
        back.restore(&r.snapshot().unwrap()).unwrap();
        assert_eq!(live(&back, 20_000), ["c"]);
        assert!(back.restore(b"garbage").is_err());
    }

    #[test]
    fn a_key_keeps_its_instance_and_only_a_leaving_instances_keys_move() {
        let ids = ["a", "b", "c", "d"];
        let keys: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
        let before: Vec<&str> = keys.iter().map(|k| rendezvous(k, ids).unwrap()).collect();
        // Every instance gets a fair share (within 25% of an even split).
        for id in ids {
            let n = before.iter().filter(|p| **p == id).count();
            assert!((375..=625).contains(&n), "{id} got {n} of 2000");
        }
        // Without c, only c's keys move.
        let without: Vec<&str> = keys.iter().map(|k| rendezvous(k, ["a", "b", "d"]).unwrap()).collect();
        for (b, a) in before.iter().zip(&without) {
            if *b != "c" {
                assert_eq!(b, a);
            }
        }
        assert_eq!(rendezvous("k", std::iter::empty::<&str>()), None);
        // The same pick through the state machine, among live instances only.
        let mut r = Registry::default();
        for (i, id) in ids.iter().enumerate() {
            register(&mut r, i as u64 + 1, id, 1000, 0);
        }
        let pick = |r: &Registry, key: &str, now_ms| match r.query(RegistryQuery::Pick {
            service: "api".into(),
            key: key.into(),
            now_ms,
        }) {
            RegistryAnswer::Picked(p) => p.map(|(id, _)| id),
            other => panic!("{other:?}"),
        };
        assert_eq!(pick(&r, "user-7", 10).as_deref(), Some(before[7]));
        assert_eq!(pick(&r, "user-7", 5000), None);
    }
}
