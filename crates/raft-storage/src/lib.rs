//! # raft-storage
//!
//! A durable Raft log for [`raft_core`]: [`FileStorage`] keeps the log in segment
//! files of checksummed records, the hard state and snapshots in files replaced
//! atomically, and recovers from a crash at any point, including a torn write.
//! [`LogStore`] is the write side any storage offers the driver (raft-core's
//! [`MemStorage`](raft_core::MemStorage) implements it too), and [`contract`] is the
//! suite that checks an implementation keeps its promises. For a node hosting many Raft
//! groups, [`MultiLog`] keeps them all in one log, so that one `fdatasync` commits the
//! writes of every group ([`LogStore::write_unsynced`], [`SyncDomain`]); each group's
//! [`GroupLog`] is a [`LogStore`] like [`FileStorage`].
//!
//! ```
//! use raft_core::{Entry, EntryPayload, HardState, Membership, Storage};
//! use raft_storage::{FileStorage, LogStore, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let options = Options::default().initial_membership(Membership::with_voters(["node1"]));
//! let mut store = FileStorage::open(dir.path(), options.clone())?;
//!
//! // The driver persists a Ready: entries first (one fsync for the batch), then the hard state.
//! let entries: Vec<Entry> = (1..=3)
//!     .map(|index| Entry { term: 1, index, payload: EntryPayload::Command(format!("SET k{index}").into()) })
//!     .collect();
//! store.append(&entries)?;
//! store.set_hard_state(&HardState { term: 1, vote: Some("node1".into()), commit: 3 })?;
//! drop(store);
//!
//! // After a restart everything acknowledged is back.
//! let store = FileStorage::open(dir.path(), options)?;
//! assert_eq!(store.last_index()?, 3);
//! assert_eq!(store.entries(1, 4, u64::MAX)?, entries);
//! assert_eq!(store.initial_state()?.hard_state.commit, 3);
//! # Ok(())
//! # }
//! ```
//!
//! The on-disk format and the recovery rules are in `docs/storage.md`, included below.
//!
#![doc = include_str!("../../../docs/storage.md")]
#![warn(missing_docs, unreachable_pub)]

mod append_rules;
pub mod backup;
mod cache;
pub mod contract;
mod error;
mod file_storage;
mod format;
mod log_store;
mod multi_log;
mod names;
mod options;
mod record_scan;
mod recovery;
mod segment;
mod snapshot_file;
mod snapshot_sink;
mod state;
mod terms;
pub mod vfs;
mod wal;
mod whole_file;

pub use error::{Corruption, Error, REPAIR_HINT};
pub use file_storage::{FileStorage, Stats};
pub use log_store::{ChunkSource, LogStore, SyncDomain};
pub use multi_log::{GroupLog, MultiLog, MultiLogStats};
pub use options::{Durability, Options, MIN_SEGMENT_SIZE};
pub use snapshot_sink::{SnapshotSink, StagedSnapshot};
