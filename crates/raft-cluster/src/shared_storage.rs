//! The storage shared between the core (which reads it) and the blocking thread that
//! persists a Ready (which writes it), so disk IO never runs on the async executor.

use std::sync::{Arc, Mutex, MutexGuard};

use raft_core::{Entry, InitialState, LogIndex, Snapshot, Storage, StorageError, Term};

/// A cloneable handle to one storage. The node task only reads through it while no
/// persist is running, so the lock is never contended.
pub(crate) struct Shared<S>(Arc<Mutex<S>>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<S> Shared<S> {
    pub(crate) fn new(s: S) -> Self {
        Shared(Arc::new(Mutex::new(s)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        // A panic in a storage call poisons the lock; the node stops on storage
        // errors anyway, so reading on is no worse than the panic itself.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: Storage> Storage for Shared<S> {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.lock().initial_state()
    }

    fn entries(&self, low: LogIndex, high: LogIndex, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        self.lock().entries(low, high, max_bytes)
    }

    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.lock().term(index)
    }

    fn first_index(&self) -> Result<LogIndex, StorageError> {
        self.lock().first_index()
    }

    fn last_index(&self) -> Result<LogIndex, StorageError> {
        self.lock().last_index()
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.lock().snapshot()
    }
}
