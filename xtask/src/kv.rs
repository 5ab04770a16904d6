//! The demo's replicated state machine: a small key-value map.

use std::collections::BTreeMap;

use easyraft::prelude::*;
use serde::{Deserialize, Serialize};

/// A replicated `String -> String` map.
#[derive(Debug, Default)]
pub struct Kv {
    map: BTreeMap<String, String>,
}

/// A command, replicated through the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value` (idempotent, so a client may retry it safely).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// A read-only query, answered linearizably by `RaftHandle::read`.
#[derive(Clone, Debug)]
pub enum KvQuery {
    /// The value of one key.
    Get(String),
    /// The whole map.
    Dump,
}

/// A query's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvAnswer {
    /// The value of one key.
    Value(Option<String>),
    /// The whole map.
    All(BTreeMap<String, String>),
}

impl StateMachine for Kv {
    type Command = KvCommand;
    /// The previous value.
    type Response = Option<String>;
    type Query = KvQuery;
    type QueryResponse = KvAnswer;

    fn apply(&mut self, _index: LogIndex, command: KvCommand) -> Option<String> {
        match command {
            KvCommand::Set { key, value } => self.map.insert(key, value),
            KvCommand::Delete { key } => self.map.remove(&key),
        }
    }

    fn query(&self, query: KvQuery) -> KvAnswer {
        match query {
            KvQuery::Get(key) => KvAnswer::Value(self.map.get(&key).cloned()),
            KvQuery::Dump => KvAnswer::All(self.map.clone()),
        }
    }

    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok(serde_json::to_vec(&self.map)?.into())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), BoxError> {
        self.map = serde_json::from_slice(snapshot)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_query_snapshot_restore() {
        let mut kv = Kv::default();
        let set = |k: &str, v: &str| KvCommand::Set {
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(kv.apply(1, set("a", "1")), None);
        assert_eq!(kv.apply(2, set("a", "2")), Some("1".into()));
        kv.apply(3, set("b", "3"));
        kv.apply(4, KvCommand::Delete { key: "b".into() });
        assert_eq!(kv.query(KvQuery::Get("a".into())), KvAnswer::Value(Some("2".into())));
        let snap = kv.snapshot().unwrap();
        let mut other = Kv::default();
        other.restore(&snap).unwrap();
        assert_eq!(other.query(KvQuery::Dump), kv.query(KvQuery::Dump));
    }
}
