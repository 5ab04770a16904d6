//! A replicated key-value store.

use std::collections::BTreeMap;
use std::sync::Arc;

use easyraft::{BoxError, LogIndex, StateMachine};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{bad, count_param, decode, encode, flag_param, opt_str_param, str_param, Hosts, Node};

/// The store's state.
#[derive(Default, Serialize, Deserialize)]
pub struct KvStore {
    map: BTreeMap<String, String>,
}

/// A write.
#[derive(Debug, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` (or removes it when `None`) only if its value is `expected`
    /// (`None`: absent).
    Cas {
        /// The key.
        key: String,
        /// The value it must have now.
        expected: Option<String>,
        /// The value to set.
        new: Option<String>,
    },
}

/// A write's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResult {
    /// Whether the write happened (always, except a CAS whose expectation failed).
    pub ok: bool,
    /// The value before the write.
    pub previous: Option<String>,
    /// The log index the write was applied at.
    pub index: LogIndex,
}

/// A read.
#[derive(Debug)]
pub enum KvQuery {
    /// One key.
    Get(String),
    /// Keys starting with a prefix, in order, at most `limit`.
    Scan {
        /// The prefix.
        prefix: String,
        /// The most pairs to return.
        limit: usize,
    },
}

/// A read's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvAnswer {
    /// The value of a key.
    Value(Option<String>),
    /// Pairs of a scan.
    Pairs(Vec<(String, String)>),
}

impl StateMachine for KvStore {
    type Command = KvCommand;
    type Response = KvResult;
    type Query = KvQuery;
    type QueryResponse = KvAnswer;

    fn apply(&mut self, index: LogIndex, cmd: KvCommand) -> KvResult {
        let (ok, previous) = match cmd {
            KvCommand::Put { key, value } => (true, self.map.insert(key, value)),
            KvCommand::Delete { key } => (true, self.map.remove(&key)),
            KvCommand::Cas { key, expected, new } => {
                let current = self.map.get(&key).cloned();
                if current != expected {
                    (false, current)
                } else {
                    match new {
                        Some(v) => self.map.insert(key, v),
                        None => self.map.remove(&key),
                    };
                    (true, current)
                }
            }
        };
        KvResult { ok, previous, index }
    }

    fn query(&self, q: KvQuery) -> KvAnswer {
        match q {
            KvQuery::Get(k) => KvAnswer::Value(self.map.get(&k).cloned()),
            KvQuery::Scan { prefix, limit } => KvAnswer::Pairs(
                self.map
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
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

/// The KV API: `kv_put {key, value}`, `kv_get {key, stale}`, `kv_delete {key}`,
/// `kv_cas {key, expected, new}`, `kv_scan {prefix, limit}` (params by name).
///
/// Reads are linearizable (ReadIndex) unless `kv_get` is given `"stale": true`: then
/// the node answers from its own state at once ([`RaftHandle::read_local`](easyraft::RaftHandle::read_local)),
/// which works on any node, even one cut off, but may miss acknowledged writes.
pub fn rpc(node: Node<KvStore>) -> RpcModule<Node<KvStore>> {
    rpc_for(node)
}

/// [`rpc`] over any state machine that carries the kv service (see
/// [`Hosts`]), such as `easyraft-server`'s combined machine.
pub fn rpc_for<M: Hosts<KvStore>>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let write = |method: &'static str, make: fn(&Value) -> Result<KvCommand, ErrorObjectOwned>| {
        move |params: jsonrpsee::types::Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = make(&p)?;
            let r = node.propose::<KvStore>(&p, cmd).await?;
            tracing::debug!(method, index = r.index, "kv write applied");
            Ok::<_, ErrorObjectOwned>(json!({ "ok": r.ok, "previous": r.previous, "index": r.index }))
        }
    };
    let reg = |m: &mut RpcModule<_>, name: &'static str, f: fn(&Value) -> Result<KvCommand, ErrorObjectOwned>| {
        m.register_async_method(name, write(name, f)).map(|_| ())
    };
    let _ = reg(&mut m, "kv_put", |p| {
        Ok(KvCommand::Put {
            key: str_param(p, "key")?,
            value: str_param(p, "value")?,
        })
    });
    let _ = reg(&mut m, "kv_delete", |p| {
        Ok(KvCommand::Delete {
            key: str_param(p, "key")?,
        })
    });
    let _ = reg(&mut m, "kv_cas", |p| {
        Ok(KvCommand::Cas {
            key: str_param(p, "key")?,
            expected: opt_str_param(p, "expected")?,
            new: opt_str_param(p, "new")?,
        })
    });
    let _ = m.register_async_method("kv_get", |params, node, _| async move {
        let p: Value = params.parse()?;
        let key = str_param(&p, "key")?;
        let stale = flag_param(&p, "stale")?;
        match node.query::<KvStore>(KvQuery::Get(key), stale).await? {
            KvAnswer::Value(v) => Ok::<_, ErrorObjectOwned>(json!({ "value": v })),
            KvAnswer::Pairs(_) => Err(bad("unexpected answer")),
        }
    });
    let _ = m.register_async_method("kv_scan", |params, node, _| async move {
        let p: Value = params.parse()?;
        let prefix = opt_str_param(&p, "prefix")?.unwrap_or_default();
        let limit = count_param(&p, "limit", 1000, 10_000)? as usize;
        match node.query::<KvStore>(KvQuery::Scan { prefix, limit }, false).await? {
            KvAnswer::Pairs(pairs) => Ok::<_, ErrorObjectOwned>(json!({
                "pairs": pairs.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()
            })),
            KvAnswer::Value(_) => Err(bad("unexpected answer")),
        }
    });
    m
}
