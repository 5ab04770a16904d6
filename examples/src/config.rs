//! A configuration center: hierarchical keys (`app/db/url`), a version per key (the log
//! index of its last change), watches that return every change after a version, so a
//! client that reconnects with the last version it saw misses nothing, and rollback of
//! a key or a whole namespace to an earlier version, as one new version that watchers
//! see like any change.

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
    /// Sets or deletes `key` at `index`, recording the change.
    fn write(&mut self, index: LogIndex, key: String, value: Option<String>) {
        match &value {
            Some(v) => {
                self.keys.insert(key.clone(), (v.clone(), index));
            }
            None => {
                self.keys.remove(&key);
            }
        }
        self.history.push_back(Change {
            version: index,
            key,
            value,
        });
        while self.history.len() > HISTORY {
            self.drop_oldest();
        }
    }

    /// The keys of `scope` that changed after `to`, each with its value at `to`
    /// (`None`: absent then).
    fn values_at(&self, scope: &Scope, to: LogIndex) -> Result<BTreeMap<String, Option<String>>, Refused> {
        if to > self.version {
            return Err(Refused::Future {
                to,
                version: self.version,
            });
        }
        let gone = Refused::HistoryGone {
            to,
            kept_after: self.dropped_through,
        };
        if to < self.dropped_through {
            return Err(gone);
        }
        let mut out = BTreeMap::new();
        for c in self.history.iter().filter(|c| c.version > to && scope.covers(&c.key)) {
            if out.contains_key(&c.key) {
                continue;
            }
            let last = self.history.iter().rev().find(|h| h.version <= to && h.key == c.key);
            let value = match last {
                Some(h) => h.value.clone(),
                // Never changed in the kept history up to `to`: absent then, unless
                // older changes were dropped (then nobody knows).
                None if self.dropped_through == 0 => None,
                None => return Err(gone),
            };
            out.insert(c.key.clone(), value);
        }
        Ok(out)
    }

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
    /// Gives every key in `scope` the value it had at version `to` (deleting those
    /// that did not exist then), as one new version.
    Rollback {
        /// The key or the namespace.
        scope: Scope,
        /// The version to go back to.
        to: LogIndex,
    },
}

/// What a rollback covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// One key.
    Key(String),
    /// Every key starting with this prefix (`app/`).
    Prefix(String),
}

impl Scope {
    fn covers(&self, key: &str) -> bool {
        match self {
            Scope::Key(k) => k == key,
            Scope::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// A write's result: the new version and the keys it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The store's version after the write (the write's log index).
    pub version: LogIndex,
    /// The keys it set or deleted (a rollback: those that differed from version `to`).
    pub keys: Vec<String>,
}

/// Why a write was refused (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refused {
    /// The history needed to know the values at `to` was dropped (it keeps the last
    /// [`HISTORY`] changes).
    #[error("version {to} is older than the kept history (changes after {kept_after} are kept)")]
    HistoryGone {
        /// The version asked for.
        to: LogIndex,
        /// Changes after this version are kept.
        kept_after: LogIndex,
    },
    /// `to` is newer than the store.
    #[error("version {to} is newer than the store's version {version}")]
    Future {
        /// The version asked for.
        to: LogIndex,
        /// The store's version.
        version: LogIndex,
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
    type Response = Result<Written, Refused>;
    type Query = ConfigQuery;
    type QueryResponse = ConfigAnswer;

    fn apply(&mut self, index: LogIndex, cmd: ConfigCommand) -> Result<Written, Refused> {
        let changes = match cmd {
            ConfigCommand::Set { key, value } => vec![(key, Some(value))],
            ConfigCommand::Delete { key } => vec![(key, None)],
            // Only the keys whose value differs from their value at `to`: a key that is
            // already back is not written again (watchers see no empty change).
            ConfigCommand::Rollback { scope, to } => self
                .values_at(&scope, to)?
                .into_iter()
                .filter(|(k, v)| self.keys.get(k).map(|(cur, _)| cur) != v.as_ref())
                .collect(),
        };
        let keys = changes.iter().map(|(k, _)| k.clone()).collect();
        for (key, value) in changes {
            self.write(index, key, value);
        }
        self.version = index;
        Ok(Written { version: index, keys })
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
        let w = node
            .propose::<ConfigStore>(&p, cmd)
            .await?
            .map_err(|e| bad(e.to_string()))?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": w.version }))
    });
    let _ = m.register_async_method("config_delete", |params, node, _| async move {
        let p: Value = params.parse()?;
        let cmd = ConfigCommand::Delete {
            key: str_param(&p, "key")?,
        };
        let w = node
            .propose::<ConfigStore>(&p, cmd)
            .await?
            .map_err(|e| bad(e.to_string()))?;
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
        let w = node
            .propose::<ConfigStore>(&p, ConfigCommand::Rollback { scope, to })
            .await?
            .map_err(|e| bad(e.to_string()))?;
        Ok::<_, ErrorObjectOwned>(json!({ "version": w.version, "keys": w.keys }))
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
        set(&mut s, 3, "app/a", "1");
        set(&mut s, 4, "other/x", "2");
        assert!(s.apply(5, ConfigCommand::Delete { key: "app/a".into() }).is_ok());
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

    fn set(s: &mut ConfigStore, index: LogIndex, key: &str, value: &str) {
        let cmd = ConfigCommand::Set {
            key: key.into(),
            value: value.into(),
        };
        assert!(s.apply(index, cmd).is_ok());
    }

    fn get(s: &ConfigStore, key: &str) -> Option<String> {
        match s.query(ConfigQuery::Get(key.into())) {
            ConfigAnswer::Entry(e) => e.map(|(v, _)| v),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rollback_restores_a_key_or_a_namespace_as_one_new_version_watchers_see() {
        let mut s = ConfigStore::default();
        set(&mut s, 1, "app/db", "old-db");
        set(&mut s, 2, "app/cache", "on");
        set(&mut s, 3, "other/x", "1");
        // Version 3 is the good one; then a bad deploy.
        set(&mut s, 4, "app/db", "bad-db");
        set(&mut s, 5, "app/new", "oops");
        assert!(s
            .apply(
                6,
                ConfigCommand::Delete {
                    key: "app/cache".into()
                }
            )
            .is_ok());
        set(&mut s, 7, "other/x", "2");

        // One key.
        let one = s.apply(
            8,
            ConfigCommand::Rollback {
                scope: Scope::Key("app/db".into()),
                to: 3,
            },
        );
        assert_eq!(
            one,
            Ok(Written {
                version: 8,
                keys: vec!["app/db".into()]
            })
        );
        assert_eq!(get(&s, "app/db").as_deref(), Some("old-db"));
        assert_eq!(get(&s, "app/new").as_deref(), Some("oops"));

        // The namespace: app/new did not exist at 3 (deleted), app/cache did (back);
        // app/db already matches version 3 and stays out; other/ is untouched.
        let all = s.apply(
            9,
            ConfigCommand::Rollback {
                scope: Scope::Prefix("app/".into()),
                to: 3,
            },
        );
        let keys = all.map(|w| w.keys).unwrap_or_default();
        assert_eq!(keys, ["app/cache", "app/new"]);
        assert_eq!(get(&s, "app/cache").as_deref(), Some("on"));
        assert_eq!(get(&s, "app/new"), None);
        assert_eq!(get(&s, "other/x").as_deref(), Some("2"));
        // A watcher at version 8 sees the rollback as changes at version 9.
        let ConfigAnswer::Changes(c, 9) = s.query(ConfigQuery::Since {
            prefix: "app/".into(),
            version: 8,
        }) else {
            panic!()
        };
        assert!(c.iter().all(|c| c.version == 9) && c.len() == 2, "{c:?}");

        // Refusals change nothing.
        let future = s.apply(
            10,
            ConfigCommand::Rollback {
                scope: Scope::Prefix("".into()),
                to: 99,
            },
        );
        assert_eq!(future, Err(Refused::Future { to: 99, version: 9 }));
        s.drop_oldest();
        s.drop_oldest();
        let gone = s.apply(
            10,
            ConfigCommand::Rollback {
                scope: Scope::Key("app/db".into()),
                to: 1,
            },
        );
        assert!(matches!(gone, Err(Refused::HistoryGone { to: 1, .. })), "{gone:?}");
        assert_eq!(s.version, 9);
    }
}
