//! Counters a metrics exporter can publish.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one node (shared with its handles).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) proposals: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) persists: AtomicU64,
    pub(crate) entries_persisted: AtomicU64,
    pub(crate) elections_won: AtomicU64,
    pub(crate) snapshots_taken: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            proposals: get(&self.proposals),
            applied: get(&self.applied),
            persists: get(&self.persists),
            entries_persisted: get(&self.entries_persisted),
            elections_won: get(&self.elections_won),
            snapshots_taken: get(&self.snapshots_taken),
            messages_sent: get(&self.messages_sent),
        }
    }
}

/// A point-in-time copy of a node's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Commands proposed on this node while it was leader.
    pub proposals: u64,
    /// Entries applied to the state machine.
    pub applied: u64,
    /// Persist calls (each ends in one fsync with durable storage).
    pub persists: u64,
    /// Entries written to the log.
    pub entries_persisted: u64,
    /// Elections this node won.
    pub elections_won: u64,
    /// Snapshots taken by this node.
    pub snapshots_taken: u64,
    /// Messages handed to the transport.
    pub messages_sent: u64,
}
