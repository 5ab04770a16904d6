//! Log entries and snapshots.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::types::{LogIndex, Membership, Term};

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// The empty entry a new leader appends at the start of its term, so that it can
    /// commit (and learn the commit index of) everything before it (§8).
    Noop,
    /// An application command, opaque to Raft.
    Command(#[serde(with = "crate::wire_bytes")] Bytes),
    /// A new membership configuration. It takes effect as soon as it is appended
    /// (dissertation §4.1), not when committed.
    Membership(Membership),
}

/// One entry of the replicated log. Only the leader assigns `term` and `index`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// The entry's content.
    pub payload: EntryPayload,
}

/// What [`Entry::size`] adds to the payload for an entry's term, index and framing.
const ENTRY_OVERHEAD: u64 = 24;

impl Entry {
    /// An approximate size in bytes, used to bound message and batch sizes: the
    /// payload's bytes plus a fixed per-entry overhead (so empty entries count too).
    pub fn size(&self) -> u64 {
        let payload = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(b) => b.len(),
            EntryPayload::Membership(m) => 16 * (m.voters.len() + m.learners.len() + m.voters_outgoing.len()),
        };
        (payload as u64).saturating_add(ENTRY_OVERHEAD)
    }

    /// The [`Entry::size`] of an entry carrying `command`.
    pub(crate) fn command_size(command: &[u8]) -> u64 {
        (command.len() as u64).saturating_add(ENTRY_OVERHEAD)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.payload {
            EntryPayload::Noop => write!(f, "{}/{} noop", self.term, self.index),
            EntryPayload::Command(b) => write!(f, "{}/{} cmd[{}B]", self.term, self.index, b.len()),
            EntryPayload::Membership(m) => write!(
                f,
                "{}/{} conf voters={:?} outgoing={:?} learners={:?}",
                self.term, self.index, m.voters, m.voters_outgoing, m.learners
            ),
        }
    }
}

/// What a snapshot covers: everything up to and including `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot includes.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in effect at `index`.
    pub membership: Membership,
}

/// A state-machine snapshot and its metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The application's serialized state, opaque to Raft.
    #[serde(with = "crate::wire_bytes")]
    pub data: Bytes,
}
