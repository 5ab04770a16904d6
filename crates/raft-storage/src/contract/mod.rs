//! The storage contract suite: the promises raft-core relies on, as checks that any
//! [`LogStore`] can run (in the manner of openraft's `testing/log/suite.rs`). Each check
//! takes a fresh, empty storage and panics with the check's name and what went wrong.
//!
//! ```
//! // In your tests: every check on fresh storages from a factory.
//! raft_storage::contract::run_all(raft_core::MemStorage::default);
//! ```
//!
//! A durable storage should also pass [`run_reopen_checks`], which closes and reopens
//! it between writes and reads:
//!
//! ```
//! use raft_storage::{contract, Durability, FileStorage, Options};
//!
//! let dirs = std::cell::RefCell::new(Vec::new());
//! let options = Options::default().durability(Durability::UnsafeNoFsyncForTests);
//! contract::run_reopen_checks(
//!     || {
//!         let dir = tempfile::tempdir().unwrap();
//!         let store = FileStorage::open(dir.path(), options.clone()).unwrap();
//!         dirs.borrow_mut().push(dir);
//!         store
//!     },
//!     |store| {
//!         let dir = store.dir().to_owned();
//!         drop(store);
//!         FileStorage::open(dir, options.clone()).unwrap()
//!     },
//! );
//! ```

use std::fmt::Debug;

use bytes::Bytes;
use raft_core::{Entry, EntryPayload, LogIndex, Membership, Snapshot, SnapshotMeta, Storage, StorageError, Term};

use crate::log_store::LogStore;

mod checks;
mod unsynced;

pub use checks::*;
pub use unsynced::*;

/// Runs every check that needs no reopening, each on a storage from `make` (which must
/// return an empty storage: no entries, no snapshot).
pub fn run_all<S: LogStore>(mut make: impl FnMut() -> S) {
    let checks: [fn(S); 17] = [
        empty_storage::<S>,
        append_and_read_back::<S>,
        entries_respect_max_bytes::<S>,
        out_of_range_reads_fail::<S>,
        append_replaces_suffix::<S>,
        append_with_gap_is_refused::<S>,
        append_skips_entries_behind_snapshot::<S>,
        empty_append_changes_nothing::<S>,
        hard_state_round_trips::<S>,
        compaction_keeps_later_entries::<S>,
        conflicting_snapshot_drops_log::<S>,
        snapshot_beyond_log_drops_log::<S>,
        stale_snapshot_is_ignored::<S>,
        every_payload_kind_round_trips::<S>,
        many_entries_read_in_windows::<S>,
        streamed_snapshot_round_trips::<S>,
        unsynced_writes_read_back::<S>,
    ];
    for check in checks {
        check(make());
    }
}

/// Runs the checks that close and reopen a storage: `make` gives an empty storage,
/// `reopen` closes one and opens the same data again (as after a restart).
pub fn run_reopen_checks<S: LogStore>(mut make: impl FnMut() -> S, mut reopen: impl FnMut(S) -> S) {
    let checks: [ReopenCheck<S>; 6] = [
        reopen_keeps_everything::<S>,
        reopen_keeps_replaced_suffix::<S>,
        reopen_keeps_compaction_and_appends_continue::<S>,
        reopen_keeps_dropped_log::<S>,
        reopen_keeps_streamed_snapshot::<S>,
        reopen_keeps_synced_unsynced_writes::<S>,
    ];
    for check in checks {
        check(make(), &mut reopen);
    }
}

/// A check that closes and reopens the storage through the given closure.
type ReopenCheck<S> = fn(S, &mut dyn FnMut(S) -> S);

/// Entries `range` of `term`, with a payload that names them.
pub fn entries(range: std::ops::Range<LogIndex>, term: Term) -> Vec<Entry> {
    range
        .map(|index| Entry {
            term,
            index,
            payload: EntryPayload::Command(Bytes::from(format!("{index}@{term}"))),
        })
        .collect()
}

/// A snapshot at `index` of `term` with the given voters and some data.
pub fn snapshot(index: LogIndex, term: Term, voters: &[&str]) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters(voters.iter().copied()),
        },
        data: Bytes::from(format!("state machine at {index}@{term}")),
    }
}

/// Panics unless `got` (a storage under test) reads exactly like `want` (a model):
/// hard state, membership, snapshot, first and last index, and every entry and term.
pub fn assert_same<A: Storage, B: Storage>(check: &str, got: &A, want: &B) {
    let r = |what: &str, e: StorageError| -> ! { panic!("storage contract `{check}`: {what} failed: {e}") };
    let (g, w) = (
        got.initial_state().unwrap_or_else(|e| r("initial_state", e)),
        want.initial_state().unwrap_or_else(|e| r("model initial_state", e)),
    );
    eq(check, "initial_state", g, w);
    let gs = got.snapshot().unwrap_or_else(|e| r("snapshot", e));
    eq(
        check,
        "snapshot",
        gs,
        want.snapshot().unwrap_or_else(|e| r("model snapshot", e)),
    );
    let first = want.first_index().unwrap_or_else(|e| r("model first_index", e));
    let last = want.last_index().unwrap_or_else(|e| r("model last_index", e));
    eq(
        check,
        "first_index",
        got.first_index().unwrap_or_else(|e| r("first_index", e)),
        first,
    );
    eq(
        check,
        "last_index",
        got.last_index().unwrap_or_else(|e| r("last_index", e)),
        last,
    );
    let all = want
        .entries(first, last + 1, u64::MAX)
        .unwrap_or_else(|e| r("model entries", e));
    eq(
        check,
        "entries",
        got.entries(first, last + 1, u64::MAX)
            .unwrap_or_else(|e| r("entries", e)),
        all,
    );
    for i in first - 1..=last {
        eq(check, &format!("term({i})"), got.term(i).ok(), want.term(i).ok());
    }
}

pub(super) fn eq<T: PartialEq + Debug>(check: &str, what: &str, got: T, want: T) {
    if got != want {
        panic!("storage contract `{check}` violated: {what}:\n   got: {got:?}\n  want: {want:?}");
    }
}

pub(super) fn ok<T>(check: &str, what: &str, r: Result<T, StorageError>) -> T {
    r.unwrap_or_else(|e| panic!("storage contract `{check}` violated: {what} failed: {e}"))
}

pub(super) fn is_compacted<T: Debug>(check: &str, what: &str, r: Result<T, StorageError>) {
    if !matches!(r, Err(StorageError::Compacted(_))) {
        panic!("storage contract `{check}` violated: {what}: want Err(Compacted), got {r:?}");
    }
}

pub(super) fn is_unavailable<T: Debug>(check: &str, what: &str, r: Result<T, StorageError>) {
    if !matches!(r, Err(StorageError::Unavailable(_))) {
        panic!("storage contract `{check}` violated: {what}: want Err(Unavailable), got {r:?}");
    }
}

/// The log (first index, last index, entries) of a storage.
pub(super) fn log_of<S: Storage>(check: &str, s: &S) -> (LogIndex, LogIndex, Vec<Entry>) {
    let first = ok(check, "first_index", s.first_index());
    let last = ok(check, "last_index", s.last_index());
    (
        first,
        last,
        ok(check, "entries(first..=last)", s.entries(first, last + 1, u64::MAX)),
    )
}

pub(super) fn expect_log<S: Storage>(check: &str, s: &S, first: LogIndex, want: &[Entry]) {
    let last = want.last().map_or(first - 1, |e| e.index);
    eq(
        check,
        "log (first, last, entries)",
        log_of(check, s),
        (first, last, want.to_vec()),
    );
    for e in want {
        eq(
            check,
            &format!("term({})", e.index),
            ok(check, "term", s.term(e.index)),
            e.term,
        );
    }
}
