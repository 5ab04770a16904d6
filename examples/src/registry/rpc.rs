//! The registry's JSON-RPC API: `registry_register`, `registry_heartbeat`,
//! `registry_deregister`, `registry_list`, `registry_pick` and `registry_services`,
//! over any state machine that carries the registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};

use super::machine::{
    Instance, Registry, RegistryAnswer, RegistryCommand, RegistryQuery, RegistryResult, MAX_INSTANCES,
};
use crate::api::{bad, field, now_ms, Hosts, Node};

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
