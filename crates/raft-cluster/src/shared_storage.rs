//! The storage shared between the core (which reads it on the node task) and the log
//! writer thread (which writes it), so disk IO never runs on the node task.
//!
//! The writer holds the storage's lock while it writes and fsyncs. So that the core
//! does not wait for an fsync to read what it needs on every step (the log's bounds,
//! terms for the log-matching check, the entries just committed), the writer also
//! keeps a [`Tail`]: the bounds of the stored log, the snapshot's term, and the most
//! recently written entries, bounded in bytes and count. Reads outside it (a follower
//! far behind, a snapshot to send) take the storage's lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use raft_core::{Entry, InitialState, LogIndex, Snapshot, SnapshotInfo, Storage, StorageError, Term};
use raft_storage::{ChunkSource, LogStore};

/// What the tail cache keeps at most.
const TAIL_MAX_BYTES: u64 = 64 << 20;
const TAIL_MAX_ENTRIES: usize = 65_536;

/// The stored log's bounds and its newest entries, as the writer last left them.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    first: LogIndex,
    last: LogIndex,
    /// The term at `first - 1` (the snapshot's).
    snap_term: Term,
    /// Contiguous entries ending at `last` (when not empty).
    entries: VecDeque<Entry>,
    bytes: u64,
}

impl Tail {
    fn front_index(&self) -> Option<LogIndex> {
        self.entries.front().map(|e| e.index)
    }

    fn drop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes = self.bytes.saturating_sub(e.size());
        }
    }

    fn drop_back(&mut self) {
        if let Some(e) = self.entries.pop_back() {
            self.bytes = self.bytes.saturating_sub(e.size());
        }
    }

    fn get(&self, index: LogIndex) -> Option<&Entry> {
        let front = self.front_index()?;
        let pos = usize::try_from(index.checked_sub(front)?).ok()?;
        self.entries.get(pos)
    }

    /// Entries `first..` were just written (replacing anything from `first` on).
    fn appended(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first().map(|e| e.index) else {
            return;
        };
        while self.entries.back().is_some_and(|e| e.index >= first) {
            self.drop_back();
        }
        if self
            .entries
            .back()
            .is_some_and(|e| e.index.checked_add(1) != Some(first))
        {
            self.entries.clear();
            self.bytes = 0;
        }
        for e in entries {
            self.bytes = self.bytes.saturating_add(e.size());
            self.entries.push_back(e.clone());
        }
        while self.entries.len() > TAIL_MAX_ENTRIES || (self.bytes > TAIL_MAX_BYTES && self.entries.len() > 1) {
            self.drop_front();
        }
    }

    /// Reads the bounds again from the storage, and drops cached entries outside them.
    fn refresh<S: Storage>(&mut self, store: &S) -> Result<(), StorageError> {
        self.first = store.first_index()?;
        self.last = store.last_index()?;
        self.snap_term = store.term(self.first.saturating_sub(1))?;
        while self.entries.front().is_some_and(|e| e.index < self.first) {
            self.drop_front();
        }
        while self.entries.back().is_some_and(|e| e.index > self.last) {
            self.drop_back();
        }
        Ok(())
    }
}

/// The current snapshot's chunks, when the storage can read them without itself.
type Chunks = Option<Arc<dyn ChunkSource>>;

/// A storage shared by the node task (reads) and the log writer (writes).
pub(crate) struct SharedStorage<S> {
    store: Arc<Mutex<S>>,
    tail: Arc<Mutex<Tail>>,
    /// Read by a leader sending a snapshot, without waiting for the writer's fsync.
    chunks: Arc<Mutex<Chunks>>,
}

impl<S> Clone for SharedStorage<S> {
    fn clone(&self) -> Self {
        SharedStorage {
            store: self.store.clone(),
            tail: self.tail.clone(),
            chunks: self.chunks.clone(),
        }
    }
}

impl<S: LogStore> SharedStorage<S> {
    pub(crate) fn new(s: S) -> Result<Self, StorageError> {
        let mut tail = Tail::default();
        tail.refresh(&s)?;
        let chunks = s.snapshot_chunks()?;
        Ok(SharedStorage {
            store: Arc::new(Mutex::new(s)),
            tail: Arc::new(Mutex::new(tail)),
            chunks: Arc::new(Mutex::new(chunks)),
        })
    }

    /// Called by the writer, holding `store`, after it wrote `entries` (and maybe
    /// installed a snapshot): the tail (and the snapshot's chunk reader) learn them
    /// before the core hears they are persisted.
    pub(crate) fn written(&self, store: &S, entries: &[Entry], snapshot: bool) -> Result<(), StorageError> {
        let mut tail = self.tail();
        tail.appended(entries);
        tail.refresh(store)?;
        if snapshot {
            *self.chunks.lock().unwrap_or_else(|e| e.into_inner()) = store.snapshot_chunks()?;
        }
        Ok(())
    }

    fn chunks(&self) -> Chunks {
        self.chunks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<S: Storage> SharedStorage<S> {
    /// The storage itself, for writing (the log writer) or a read the tail lacks.
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        // A panic in a storage call poisons the lock; the node stops on storage
        // errors anyway, so reading on is no worse than the panic itself.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle that does not keep the storage alive, for a thread that may outlive
    /// the node task (so that a node stopped or killed releases its data directory's
    /// lock at once, and can be restarted on it).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Mutex<S>> {
        Arc::downgrade(&self.store)
    }

    /// Whether two handles share one storage.
    pub(crate) fn same(&self, other: &SharedStorage<S>) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }
}

impl<S: LogStore> Storage for SharedStorage<S> {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.lock().initial_state()
    }

    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        {
            let tail = self.tail();
            if low < tail.first {
                return Err(StorageError::Compacted(low));
            }
            if let Some(front) = tail.front_index() {
                if low >= front && high > low && high <= tail.last.saturating_add(1) {
                    let mut out = Vec::new();
                    let mut total = 0u64;
                    for i in low..high {
                        let Some(e) = tail.get(i) else { break };
                        total = total.saturating_add(e.size());
                        if !out.is_empty() && total > max_bytes {
                            break;
                        }
                        out.push(e.clone());
                    }
                    if !out.is_empty() {
                        return Ok(out);
                    }
                }
            }
        }
        self.lock().entries(low, high, max_bytes)
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        {
            let tail = self.tail();
            if index.checked_add(1) == Some(tail.first) {
                return Ok(tail.snap_term);
            }
            if index < tail.first {
                return Err(StorageError::Compacted(index));
            }
            if index > tail.last {
                return Err(StorageError::Unavailable(index));
            }
            if let Some(e) = tail.get(index) {
                return Ok(e.term);
            }
        }
        self.lock().term(index)
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.tail().first)
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.tail().last)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.lock().snapshot()
    }

    fn snapshot_info(&self) -> Result<SnapshotInfo, StorageError> {
        if let Some(c) = self.chunks() {
            return Ok(c.info().clone());
        }
        self.lock().snapshot_info()
    }

    fn snapshot_chunk(&self, index: LogIndex, offset: u64, max_len: u64) -> Result<bytes::Bytes, StorageError> {
        if let Some(c) = self.chunks().filter(|c| c.info().meta.index == index) {
            return c.read(offset, max_len);
        }
        self.lock().snapshot_chunk(index, offset, max_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use raft_core::{EntryPayload, MemStorage};
    use raft_storage::LogStore;

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: EntryPayload::Command(Bytes::from(vec![index as u8; 10])),
        }
    }

    #[test]
    fn the_tail_answers_like_the_storage_after_appends_overwrites_and_compaction() {
        let shared = SharedStorage::new(MemStorage::default()).unwrap();
        let write = |es: &[Entry]| {
            let mut st = shared.lock();
            st.append(es).unwrap();
            shared.written(&st, es, false).unwrap();
        };
        write(&(1..=10).map(|i| entry(i, 1)).collect::<Vec<_>>());
        write(&(6..=8).map(|i| entry(i, 2)).collect::<Vec<_>>());
        let check = |shared: &SharedStorage<MemStorage>| {
            let st = shared.lock();
            let (first, last) = (st.first_index().unwrap(), st.last_index().unwrap());
            drop(st);
            assert_eq!(shared.first_index().unwrap(), first);
            assert_eq!(shared.last_index().unwrap(), last);
            for i in first.saturating_sub(1)..=last + 1 {
                let direct = shared.lock().term(i);
                assert_eq!(shared.term(i).ok(), direct.ok(), "term({i})");
            }
            for lo in first..=last {
                for hi in lo + 1..=last + 1 {
                    let direct = shared.lock().entries(lo, hi, u64::MAX).unwrap();
                    assert_eq!(shared.entries(lo, hi, u64::MAX).unwrap(), direct, "entries({lo}, {hi})");
                }
            }
        };
        check(&shared);
        assert_eq!(shared.last_index().unwrap(), 8, "the overwrite truncated the log");
        {
            let mut st = shared.lock();
            let snap = Snapshot {
                meta: raft_core::SnapshotMeta {
                    index: 5,
                    term: 1,
                    membership: Default::default(),
                },
                data: Bytes::new(),
            };
            st.save_snapshot(&snap).unwrap();
            shared.written(&st, &[], true).unwrap();
        }
        check(&shared);
        assert_eq!(shared.first_index().unwrap(), 6);
        assert!(matches!(
            shared.entries(3, 7, u64::MAX),
            Err(StorageError::Compacted(3))
        ));
    }

    #[test]
    fn a_leader_reads_snapshot_chunks_while_the_writer_holds_the_storage() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let fs = raft_storage::FileStorage::open(dir.path(), raft_storage::Options::default()).unwrap();
        let shared = SharedStorage::new(fs).unwrap();
        let install = |index: LogIndex, byte: u8| {
            let mut st = shared.lock();
            let mut sink = st.snapshot_sink().unwrap();
            sink.write_all(&vec![byte; 100_000]).unwrap();
            let meta = raft_core::SnapshotMeta {
                index,
                term: 1,
                membership: raft_core::Membership::with_voters(["a"]),
            };
            st.install_snapshot(&meta, sink.finish().unwrap()).unwrap();
            shared.written(&st, &[], true).unwrap();
        };
        install(10, 7);
        // The writer holds the storage (as during an fsync); chunks still come.
        let held = shared.lock();
        let reader = shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let info = reader.snapshot_info();
            let chunk = reader.snapshot_chunk(10, 99_990, 1000);
            let _ = tx.send((info, chunk));
        });
        let (info, chunk) = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the chunk was read without waiting for the storage");
        drop(held);
        assert_eq!(info.unwrap().meta.index, 10);
        assert_eq!(chunk.unwrap(), Bytes::from(vec![7u8; 10]));
        // A newer snapshot replaces the reader; the old index is no longer served.
        install(20, 9);
        assert_eq!(shared.snapshot_info().unwrap().meta.index, 20);
        assert_eq!(shared.snapshot_chunk(20, 0, 3).unwrap(), Bytes::from(vec![9u8; 3]));
        assert!(shared.snapshot_chunk(10, 0, 3).is_err());
    }
}
