//! `AnyStorage`: a storage chosen at run time (memory or disk) behind one type.

use raft_core::{Entry, HardState, InitialState, LogIndex, Snapshot, Storage, StorageError, Term};
use raft_storage::LogStore;

/// Any [`LogStore`], boxed, so a cluster type does not depend on where nodes keep
/// their log.
pub struct AnyStorage(Box<dyn LogStore + Send>);

impl AnyStorage {
    /// Boxes a storage.
    pub fn new(storage: impl LogStore + Send + 'static) -> Self {
        AnyStorage(Box::new(storage))
    }
}

impl Storage for AnyStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.0.initial_state()
    }
    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        self.0.entries(low, high, max_bytes)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.0.term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        self.0.first_index()
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.0.last_index()
    }
    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.0.snapshot()
    }
}

impl LogStore for AnyStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.0.append(entries)
    }
    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.0.set_hard_state(hard_state)
    }
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.0.save_snapshot(snapshot)
    }
}
