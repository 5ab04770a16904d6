//! The configuration center's JSON-RPC API: `config_set`, `config_delete`,
//! `config_get`, `config_list`, `config_watch` (a long poll) and `config_rollback`,
//! over any state machine that carries the config service.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};

use super::machine::{Change, ConfigAnswer, ConfigCommand, ConfigQuery, ConfigStore, Scope, Written};
use crate::api::{bad, str_param, Hosts, Node};

fn changes_json(changes: Vec<Change>) -> Vec<Value> {
    changes
        .into_iter()
        .map(|c| json!({"version": c.version, "key": c.key, "value": c.value, "deleted": c.value.is_none()}))
        .collect()
}

async fn watch<M: Hosts<ConfigStore>>(params: Params<'static>, node: Arc<Node<M>>) -> Result<Value, ErrorObjectOwned> {
    let p: Value = params.parse()?;
    let prefix = p.get("prefix").and_then(Value::as_str).unwrap_or("").to_string();
    let version = p.get("version").and_then(Value::as_u64).unwrap_or(0);
    let timeout = Duration::from_millis(
        p.get("timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(30_000)
            .min(120_000),
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let mut events = node.handle().events();
    loop {
        let q = ConfigQuery::Since {
            prefix: prefix.clone(),
            version,
        };
        match node.query::<ConfigStore>(q, false).await? {
            ConfigAnswer::Changes(changes, current)
                if !changes.is_empty() || tokio::time::Instant::now() >= deadline =>
            {
                return Ok(json!({ "changes": changes_json(changes), "version": current }));
            }
            ConfigAnswer::Resync(current) => {
                let ConfigAnswer::Entries(entries, _) =
                    node.query::<ConfigStore>(ConfigQuery::List(prefix), false).await?
                else {
                    return Err(bad("unexpected answer"));
                };
                let entries: Vec<Value> = entries
                    .into_iter()
                    .map(|(k, v, ver)| json!({"key": k, "value": v, "version": ver}))
                    .collect();
                return Ok(json!({ "resync": true, "entries": entries, "version": current }));
            }
            _ => {}
        }
        // Sleep until something is applied here or the deadline passes.
        let _ = tokio::time::timeout_at(deadline, events.recv()).await;
    }
}

/// Proposes `cmd` and waits for what it wrote; a refusal (of a rollback) is a
/// `-32602` error.
async fn write<M: Hosts<ConfigStore>>(
    node: &Node<M>,
    p: &Value,
    cmd: ConfigCommand,
) -> Result<Written, ErrorObjectOwned> {
    node.propose::<ConfigStore>(p, cmd)
        .await?
        .map_err(|e| bad(e.to_string()))
}

/// The config API: `config_set {key, value}`, `config_delete {key}`,
/// `config_get {key}`, `config_list {prefix}`, `config_watch {prefix, version,
/// timeout_ms}` (returns the changes after `version`, waiting up to `timeout_ms` for
/// one; `resync: true` with the full listing when `version` is older than the kept
/// history), `config_rollback {key | prefix, version}` (every key of the key or the
/// namespace back to its value at `version`, deleting what did not exist then, as one
/// new version: `{version, keys}`; refused with -32602 when `version` is newer than the
/// store or older than the kept history).
pub fn rpc(node: Node<ConfigStore>) -> RpcModule<Node<ConfigStore>> {
    rpc_for(node)
}

/// [`rpc`] over any state machine that carries the config service (see
/// [`Hosts`]), such as `easyraft-server`'s combined machine.
pub fn rpc_for<M: Hosts<ConfigStore>>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let _ = m.register_async_method("config_set", |params, node, _| async move {
        let p: Value = params.parse()?;
        let cmd = ConfigCommand::Set {
            key: str_param(&p, "key")?,
            value: str_param(&p, "value")?,
        };
        let w = write(&node, &p, cmd).await?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": w.version }))
    });
    let _ = m.register_async_method("config_delete", |params, node, _| async move {
        let p: Value = params.parse()?;
        let cmd = ConfigCommand::Delete {
            key: str_param(&p, "key")?,
        };
        let w = write(&node, &p, cmd).await?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": w.version }))
    });
    let _ = m.register_async_method("config_get", |params, node, _| async move {
        let p: Value = params.parse()?;
        let q = ConfigQuery::Get(str_param(&p, "key")?);
        match node.query::<ConfigStore>(q, false).await? {
            ConfigAnswer::Entry(e) => Ok::<_, ErrorObjectOwned>(match e {
                Some((value, version)) => json!({"value": value, "version": version}),
                None => json!({"value": null}),
            }),
            _ => Err(bad("unexpected answer")),
        }
    });
    let _ = m.register_async_method("config_list", |params, node, _| async move {
        let p: Value = params.parse()?;
        let prefix = p.get("prefix").and_then(Value::as_str).unwrap_or("").to_string();
        match node.query::<ConfigStore>(ConfigQuery::List(prefix), false).await? {
            ConfigAnswer::Entries(entries, version) => Ok::<_, ErrorObjectOwned>(json!({
                "entries": entries.into_iter().map(|(k, v, ver)| json!({"key": k, "value": v, "version": ver})).collect::<Vec<_>>(),
                "version": version,
            })),
            _ => Err(bad("unexpected answer")),
        }
    });
    let _ = m.register_async_method("config_rollback", |params, node, _| async move {
        let p: Value = params.parse()?;
        let to = p
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("`version` (the version to go back to) must be a number"))?;
        let scope = match (
            p.get("key").and_then(Value::as_str),
            p.get("prefix").and_then(Value::as_str),
        ) {
            (Some(k), None) => Scope::Key(k.to_string()),
            (None, Some(prefix)) => Scope::Prefix(prefix.to_string()),
            _ => return Err(bad("give `key` (one key) or `prefix` (a namespace), not both")),
        };
        let w = write(&node, &p, ConfigCommand::Rollback { scope, to }).await?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": w.version, "keys": w.keys }))
    });
    let _ = m.register_async_method("config_watch", |params, node, _| watch(params, node));
    m
}
