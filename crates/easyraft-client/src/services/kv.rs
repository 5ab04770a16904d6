//! The kv service: `kv_put`, `kv_get`, `kv_delete`, `kv_cas`, `kv_scan`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{typed, Read};
use crate::client::Client;
use crate::error::Error;
use crate::policy::CallKind;

/// The key-value store.
#[derive(Clone, Debug)]
pub struct Kv {
    client: Client,
}

/// A put or delete: the log index it was applied at and the value it replaced.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Written {
    /// The log index of the write.
    pub index: u64,
    /// The value before the write.
    #[serde(default)]
    pub previous: Option<String>,
}

/// A compare-and-set's answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CasAnswer {
    /// Whether the value was `expected` and was set.
    pub ok: bool,
    /// The value before (when not `ok`: the value that did not match).
    #[serde(default)]
    pub previous: Option<String>,
    /// The log index of the write.
    pub index: u64,
}

#[derive(Deserialize)]
struct ValueAnswer {
    value: Option<String>,
}

#[derive(Deserialize)]
struct Pair {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct Pairs {
    pairs: Vec<Pair>,
}

impl Kv {
    /// The kv service through `client`.
    pub fn new(client: Client) -> Kv {
        Kv { client }
    }

    /// Sets `key` to `value`.
    pub async fn put(&self, key: &str, value: &str) -> Result<Written, Error> {
        let p = json!({"key": key, "value": value});
        typed(&self.client, "kv_put", CallKind::IdempotentWrite, p).await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<Written, Error> {
        typed(
            &self.client,
            "kv_delete",
            CallKind::IdempotentWrite,
            json!({"key": key}),
        )
        .await
    }

    /// Sets `key` to `new` (`None`: removes it) if its value is `expected` (`None`:
    /// absent). Not idempotent: retried only in a session.
    pub async fn cas(&self, key: &str, expected: Option<&str>, new: Option<&str>) -> Result<CasAnswer, Error> {
        let p = json!({"key": key, "expected": expected, "new": new});
        typed(&self.client, "kv_cas", CallKind::Write, p).await
    }

    /// The value of `key`.
    pub async fn get(&self, key: &str, read: Read) -> Result<Option<String>, Error> {
        let p = json!({"key": key, "stale": read.stale()});
        let a: ValueAnswer = typed(&self.client, "kv_get", CallKind::Read, p).await?;
        Ok(a.value)
    }

    /// At most `limit` pairs whose key starts with `prefix`, in key order.
    pub async fn scan(&self, prefix: &str, limit: u64, read: Read) -> Result<Vec<(String, String)>, Error> {
        let p: Value = json!({"prefix": prefix, "limit": limit, "stale": read.stale()});
        let a: Pairs = typed(&self.client, "kv_scan", CallKind::Read, p).await?;
        Ok(a.pairs.into_iter().map(|p| (p.key, p.value)).collect())
    }
}
