//! `AnyStorage`: a storage chosen at run time (memory or disk) behind one type.

use raft_core::{
    Entry, HardState, InitialState, LogIndex, Snapshot, SnapshotInfo, SnapshotMeta, Storage, StorageError, Term,
};
use raft_storage::{LogStore, SnapshotSink, StagedSnapshot};

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
    fn snapshot_info(&self) -> Result<SnapshotInfo, StorageError> {
        self.0.snapshot_info()
    }
    fn snapshot_chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<bytes::Bytes, StorageError> {
        self.0.snapshot_chunk(index, offset, max_len)
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
    fn writes_inline(&self) -> bool {
        self.0.writes_inline()
    }
    fn snapshot_sink(&self) -> Result<SnapshotSink, StorageError> {
        self.0.snapshot_sink()
    }
    fn install_snapshot(&mut self, meta: &SnapshotMeta, staged: StagedSnapshot) -> Result<(), StorageError> {
        self.0.install_snapshot(meta, staged)
    }
    fn snapshot_reader(&self) -> Result<Box<dyn std::io::Read + Send>, StorageError> {
        self.0.snapshot_reader()
    }
}
