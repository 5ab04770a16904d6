//! The config center: `config_set`, `config_get`, `config_delete`, `config_list`,
//! `config_watch`, `config_rollback`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{ms, typed, typed_call, Read};
use crate::client::{Call, Client};
use crate::error::Error;
use crate::policy::CallKind;

/// Versioned configuration keys, with watches and rollback.
#[derive(Clone, Debug)]
pub struct Config {
    client: Client,
}

/// A key's value at a version.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConfigEntry {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The version that set it.
    pub version: u64,
}

/// One change a watch reports.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConfigChange {
    /// The version of the change.
    pub version: u64,
    /// The key.
    pub key: String,
    /// The new value (`None`: deleted).
    pub value: Option<String>,
}

/// What a watch saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watched {
    /// The changes after the version asked for, up to `version`.
    Changes {
        /// The changes, in order.
        changes: Vec<ConfigChange>,
        /// The store's version: watch again from it.
        version: u64,
    },
    /// The history no longer reaches the version asked for: here is everything.
    Resync {
        /// Every entry under the prefix.
        entries: Vec<ConfigEntry>,
        /// The store's version.
        version: u64,
    },
}

/// A rollback's answer: the new version and the keys it changed back.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Rolledback {
    /// The version the rollback wrote.
    pub version: u64,
    /// The keys that differed from the version rolled back to.
    pub keys: Vec<String>,
}

#[derive(Deserialize)]
struct Version {
    version: u64,
}

#[derive(Deserialize)]
struct Got {
    value: Option<String>,
    #[serde(default)]
    version: Option<u64>,
}

#[derive(Deserialize)]
struct Listed {
    entries: Vec<ConfigEntry>,
    version: u64,
}

#[derive(Deserialize)]
struct WatchAnswer {
    #[serde(default)]
    resync: bool,
    #[serde(default)]
    changes: Vec<ConfigChange>,
    #[serde(default)]
    entries: Vec<ConfigEntry>,
    version: u64,
}

impl Config {
    /// The config center through `client`.
    pub fn new(client: Client) -> Config {
        Config { client }
    }

    /// Sets `key` to `value`; the new version.
    pub async fn set(&self, key: &str, value: &str) -> Result<u64, Error> {
        let p = json!({"key": key, "value": value});
        let v: Version = typed(&self.client, "config_set", CallKind::IdempotentWrite, p).await?;
        Ok(v.version)
    }

    /// Deletes `key`; the new version.
    pub async fn delete(&self, key: &str) -> Result<u64, Error> {
        let v: Version = typed(
            &self.client,
            "config_delete",
            CallKind::IdempotentWrite,
            json!({"key": key}),
        )
        .await?;
        Ok(v.version)
    }

    /// The value of `key` and the version that set it.
    pub async fn get(&self, key: &str, read: Read) -> Result<Option<(String, u64)>, Error> {
        let p = json!({"key": key, "stale": read.stale()});
        let g: Got = typed(&self.client, "config_get", CallKind::Read, p).await?;
        Ok(g.value.zip(g.version))
    }

    /// The entries under `prefix`, and the store's version.
    pub async fn list(&self, prefix: &str, read: Read) -> Result<(Vec<ConfigEntry>, u64), Error> {
        let p = json!({"prefix": prefix, "stale": read.stale()});
        let l: Listed = typed(&self.client, "config_list", CallKind::Read, p).await?;
        Ok((l.entries, l.version))
    }

    /// Waits up to `timeout` for changes under `prefix` after `version` (a long poll).
    pub async fn watch(&self, prefix: &str, version: u64, timeout: Duration) -> Result<Watched, Error> {
        let p = json!({"prefix": prefix, "version": version, "timeout_ms": ms(timeout)});
        let call = Call::new("config_watch", CallKind::Read, p).with_extra_time(timeout);
        let w: WatchAnswer = typed_call(&self.client, &call).await?;
        Ok(match w.resync {
            true => Watched::Resync {
                entries: w.entries,
                version: w.version,
            },
            false => Watched::Changes {
                changes: w.changes,
                version: w.version,
            },
        })
    }

    /// Sets `key` back to its value at version `to`, as a new version.
    pub async fn rollback_key(&self, key: &str, to: u64) -> Result<Rolledback, Error> {
        let p = json!({"key": key, "version": to});
        typed(&self.client, "config_rollback", CallKind::Write, p).await
    }

    /// Sets every key under `prefix` back to its value at version `to` (keys created
    /// since are deleted), as one new version.
    pub async fn rollback_prefix(&self, prefix: &str, to: u64) -> Result<Rolledback, Error> {
        let p = json!({"prefix": prefix, "version": to});
        typed(&self.client, "config_rollback", CallKind::Write, p).await
    }
}
