//! The configuration center's state machine: every key's value and version, the kept
//! history of changes that watches and rollbacks read, and the commands, queries and
//! answers.

use std::collections::{BTreeMap, VecDeque};

use easyraft::{BoxError, LogIndex, StateMachine};
use serde::{Deserialize, Serialize};

use crate::api::{decode, encode};

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
    /// The store's version: the index of the last write applied (the unit tests read it).
    pub(super) version: LogIndex,
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
    pub(super) fn drop_oldest(&mut self) {
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
