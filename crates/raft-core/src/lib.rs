//! # raft-core
//!
//! The Raft consensus protocol as a pure, deterministic state machine: no threads,
//! no clocks, no sockets, no files, no global randomness. A driver feeds it ticks,
//! messages and proposals and carries out what it asks for in a [`Ready`].
//!
//! ```
//! use raft_core::{Config, MemStorage, RawNode, Role};
//!
//! // A single-voter cluster: it elects itself and commits on its own.
//! let mut node = RawNode::new(Config::new("node1"), MemStorage::with_voters(["node1"])).unwrap();
//! node.campaign();
//! let mut applied = Vec::new();
//! for _ in 0..4 {
//!     if node.role() == Role::Leader && applied.is_empty() {
//!         node.propose("SET key1 value1".into()).unwrap();
//!     }
//!     let ready = node.ready();
//!     // 1. send ready.messages, 2. persist, 3. send ready.persisted_messages ...
//!     let store = node.storage_mut();
//!     store.append(&ready.entries).unwrap();
//!     if let Some(hs) = ready.hard_state {
//!         store.set_hard_state(hs);
//!     }
//!     // 4. apply committed entries.
//!     applied.extend(ready.committed_entries);
//!     node.advance();
//! }
//! assert_eq!(node.role(), Role::Leader);
//! assert!(applied.iter().any(|e| matches!(&e.payload, raft_core::EntryPayload::Command(c) if &c[..] == b"SET key1 value1")));
//! ```
//!
#![doc = include_str!("../../../docs/raft-core.md")]
#![warn(missing_docs, unreachable_pub)]

pub mod bounds;
mod conf_change;
mod config;
mod driver;
mod election;
mod entry;
mod error;
mod incoming_snapshot;
mod inflights;
mod leader;
mod log;
mod mem_storage;
mod membership;
mod message;
mod planted_bugs;
mod progress;
mod proposal;
mod quiesce;
mod quorum;
mod raft;
mod raw_node;
mod read_only;
mod read_queue;
mod ready;
mod replication;
mod rng;
pub use rng::Rng;
mod snapshot;
mod status;
mod step;
mod storage;
mod tracker;
mod transfer;
mod types;
mod uncommitted;
mod wire_bytes;

pub use bounds::{
    Refusal, SnapshotProblem, MAX_ENTRIES_PER_MESSAGE, MAX_INDEX, MAX_SNAPSHOT_INDEX, MAX_TERM, TERM_HEADROOM,
};
pub use config::{Config, QUIESCE_IDLE_TICKS};
pub use driver::{CompletionError, HardStateWrites, JobId, PersistJob, ReadyDriver, Work};
pub use entry::{Entry, EntryPayload, Snapshot, SnapshotMeta};
pub use error::{ConfigError, Error, Result, StorageError};
pub use mem_storage::MemStorage;
pub use membership::{MembershipChange, MembershipError};
pub use message::{
    AppendRequest, AppendResponse, GroupId, Heartbeat, HeartbeatResponse, Message, MessageBody, Quiesce,
    ReadIndexRequest, ReadIndexResponse, SnapshotChunk, SnapshotResponse, VoteRequest, VoteResponse,
};
pub use planted_bugs::PlantedBugs;
pub use progress::ProgressState;
pub use raw_node::RawNode;
pub use read_queue::ReadState;
pub use ready::Ready;
pub use status::{PeerProgress, Status};
pub use storage::{InitialState, SnapshotInfo, Storage};
pub use types::{HardState, LogIndex, Membership, NodeId, Role, SoftState, Term};
