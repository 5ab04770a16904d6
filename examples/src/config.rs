//! A configuration center: hierarchical keys (`app/db/url`), a version per key (the log
//! index of its last change), and watches that return every change after a version,
//! so a client that reconnects with the last version it saw misses nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use easyraft::{BoxError, LogIndex, StateMachine};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{bad, decode, encode, str_param, Hosts, Node};

/// How many past changes are kept for watches; a watcher further behind gets a full
/// resync instead.
pub const HISTORY: usize = 100_000;

/// One change of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The log index of the change: the key's new version.
    pub version: LogIndex,
    /// The key.
    pub key: String,
    /// The new value, or `None` when deleted.
    pub value: Option<String>,
}

/// The configuration's state.
#[derive(Default, Serialize, Deserialize)]
pub struct ConfigStore {
    keys: BTreeMap<String, (String, LogIndex)>,
    history: VecDeque<Change>,
    /// The version of the newest change dropped from `history` (0: none dropped).
    dropped_through: LogIndex,
    version: LogIndex,
}

impl ConfigStore {
    /// Drops the oldest change, remembering that watchers older than it must resync.
    fn drop_oldest(&mut self) {
        if let Some(c) = self.history.pop_front() {
            self.dropped_through = c.version;
        }
    }
}

/// A write.
#[derive(Debug, Serialize, Deserialize)]
pub enum ConfigCommand {
    /// Sets a key.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: String,
    },
}

/// A read.
#[derive(Debug)]
pub enum ConfigQuery {
    /// One key.
    Get(String),
    /// Keys under a prefix.
    List(String),
    /// Changes under a prefix after a version.
    Since {
        /// The prefix.
        prefix: String,
        /// The last version the watcher saw.
        version: LogIndex,
    },
}

/// A read's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAnswer {
    /// A key's value and version.
    Entry(Option<(String, LogIndex)>),
    /// Keys under a prefix, and the store's version.
    Entries(Vec<(String, String, LogIndex)>, LogIndex),
    /// Changes after the version, and the store's version.
    Changes(Vec<Change>, LogIndex),
    /// The watcher is behind the kept history: it must re-list.
    Resync(LogIndex),
}

impl StateMachine for ConfigStore {
    type Command = ConfigCommand;
    type Response = LogIndex;
    type Query = ConfigQuery;
    type QueryResponse = ConfigAnswer;

    fn apply(&mut self, index: LogIndex, cmd: ConfigCommand) -> LogIndex {
        let (key, value) = match cmd {
            ConfigCommand::Set { key, value } => {
                self.keys.insert(key.clone(), (value.clone(), index));
                (key, Some(value))
            }
            ConfigCommand::Delete { key } => {
                self.keys.remove(&key);
                (key, None)
            }
        };
        self.version = index;
        self.history.push_back(Change {
            version: index,
            key,
            value,
        });
        if self.history.len() > HISTORY {
            self.drop_oldest();
        }
        index
    }

    fn query(&self, q: ConfigQuery) -> ConfigAnswer {
        match q {
            ConfigQuery::Get(k) => ConfigAnswer::Entry(self.keys.get(&k).cloned()),
            ConfigQuery::List(prefix) => ConfigAnswer::Entries(
                self.keys
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, (v, ver))| (k.clone(), v.clone(), *ver))
                    .collect(),
                self.version,
            ),
            ConfigQuery::Since { prefix, version } => {
                if version < self.dropped_through {
                    // Changes after `version` were dropped: the watcher must re-list.
                    return ConfigAnswer::Resync(self.version);
                }
                let changes = self
                    .history
                    .iter()
                    .filter(|c| c.version > version && c.key.starts_with(&prefix))
                    .cloned()
                    .collect();
                ConfigAnswer::Changes(changes, self.version)
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

/// The config API: `config_set {key, value}`, `config_delete {key}`,
/// `config_get {key}`, `config_list {prefix}`, `config_watch {prefix, version,
/// timeout_ms}` (returns the changes after `version`, waiting up to `timeout_ms` for
/// one; `resync: true` with the full listing when `version` is older than the kept
/// history).
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
        let v = node.propose::<ConfigStore>(cmd).await?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": v }))
    });
    let _ = m.register_async_method("config_delete", |params, node, _| async move {
        let p: Value = params.parse()?;
        let cmd = ConfigCommand::Delete {
            key: str_param(&p, "key")?,
        };
        let v = node.propose::<ConfigStore>(cmd).await?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": v }))
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
    let _ = m.register_async_method("config_watch", |params, node, _| watch(params, node));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_after_a_version_and_resync_when_history_is_gone() {
        let mut s = ConfigStore::default();
        s.apply(
            3,
            ConfigCommand::Set {
                key: "app/a".into(),
                value: "1".into(),
            },
        );
        s.apply(
            4,
            ConfigCommand::Set {
                key: "other/x".into(),
                value: "2".into(),
            },
        );
        s.apply(5, ConfigCommand::Delete { key: "app/a".into() });
        let ConfigAnswer::Changes(c, v) = s.query(ConfigQuery::Since {
            prefix: "app/".into(),
            version: 3,
        }) else {
            panic!()
        };
        assert_eq!((c.len(), c[0].version, c[0].value.clone(), v), (1, 5, None, 5));
        // Nothing dropped yet: even version 0 gets the whole history.
        let since = |version| ConfigQuery::Since {
            prefix: "".into(),
            version,
        };
        assert!(matches!(s.query(since(0)), ConfigAnswer::Changes(c, 5) if c.len() == 3));
        s.drop_oldest();
        assert_eq!(s.query(since(2)), ConfigAnswer::Resync(5));
        assert!(matches!(s.query(since(3)), ConfigAnswer::Changes(c, 5) if c.len() == 2));
    }
}
