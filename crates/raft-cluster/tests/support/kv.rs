//! The tests' state machine: a KV map that records every apply.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raft_cluster::{BoxError, StateMachine};
use raft_core::LogIndex;
use serde::{Deserialize, Serialize};

/// Sets `key` to `value`; `id` identifies the write across retries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Put {
    pub id: u64,
    pub key: String,
    pub value: u64,
}

impl Put {
    /// Write number `seq` of writer `writer`: key `w{writer}`, value `seq`.
    pub fn new(writer: u64, seq: u64) -> Put {
        Put {
            id: writer * 1_000_000 + seq,
            key: format!("w{writer}"),
            value: seq,
        }
    }
}

/// The replicated state, snapshot included, so a node restored from a snapshot
/// carries the history it did not apply itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvState {
    pub data: BTreeMap<String, u64>,
    /// Every `apply` call, in order: (log index, write id). Duplicates of an id are
    /// recorded too (a retry after an unknown outcome), but take effect once.
    pub applied: Vec<(LogIndex, u64)>,
    /// Write id -> the index where it took effect (the dedup table).
    pub first_applied: BTreeMap<u64, LogIndex>,
}

/// The KV state machine; its state is shared with the test, which reads it directly.
pub struct Kv {
    state: Arc<Mutex<KvState>>,
}

impl Kv {
    pub fn new(state: Arc<Mutex<KvState>>) -> Kv {
        Kv { state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, KvState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StateMachine for Kv {
    type Command = Put;
    /// The index where the write took effect (the first one, for a duplicate).
    type Response = LogIndex;
    type Query = ();
    type QueryResponse = KvState;

    fn apply(&mut self, index: LogIndex, put: Put) -> LogIndex {
        let mut s = self.state();
        s.applied.push((index, put.id));
        if let Some(&first) = s.first_applied.get(&put.id) {
            return first;
        }
        s.first_applied.insert(put.id, index);
        s.data.insert(put.key, put.value);
        index
    }

    fn query(&self, _: ()) -> KvState {
        self.state().clone()
    }

    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok(postcard::to_allocvec(&*self.state())?.into())
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        *self.state() = postcard::from_bytes(data)?;
        Ok(())
    }
}
