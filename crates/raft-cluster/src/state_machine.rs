//! The application's replicated state machine.

use bytes::Bytes;
use raft_core::LogIndex;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::BoxError;

/// What Raft replicates. Every node applies the same commands in the same order, so
/// `apply` must be deterministic: no clocks, no randomness, no IO whose result differs
/// between nodes (carry such values inside the command instead).
pub trait StateMachine: Send + 'static {
    /// A command, as proposed; encoded with postcard into the log.
    type Command: Serialize + DeserializeOwned + Send + 'static;
    /// What applying a command returns to its proposer.
    type Response: Send + 'static;
    /// A read-only query, served linearizably by [`crate::RaftHandle::read`].
    type Query: Send + 'static;
    /// A query's answer.
    type QueryResponse: Send + 'static;

    /// Applies a committed command at `index`.
    fn apply(&mut self, index: LogIndex, command: Self::Command) -> Self::Response;

    /// Answers a query from the current state.
    fn query(&self, query: Self::Query) -> Self::QueryResponse;

    /// Serializes the whole state into one buffer (for snapshots): the simple way,
    /// for a state that fits in memory twice over. A large state implements
    /// [`StateMachine::write_snapshot`] and [`StateMachine::read_snapshot`] instead and
    /// leaves this (and [`StateMachine::restore`]) to their defaults, which fail.
    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Err("this state machine implements neither snapshot() nor write_snapshot()".into())
    }

    /// Replaces the whole state by a snapshot from [`StateMachine::snapshot`]. Check
    /// the whole snapshot before changing anything: on an error the current state
    /// must be as it was (a damaged or foreign snapshot is then fetched again).
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), BoxError> {
        let _ = snapshot;
        Err("this state machine implements neither restore() nor read_snapshot()".into())
    }

    /// Writes the whole state to `out` as a stream (into a file in the data
    /// directory, with `raft_storage::FileStorage`), so a state larger than memory
    /// can be snapshotted. Runs on the apply worker, between two applies. By
    /// default it writes [`StateMachine::snapshot`]'s buffer.
    fn write_snapshot(&self, out: &mut dyn std::io::Write) -> Result<(), BoxError> {
        out.write_all(&self.snapshot()?)?;
        Ok(())
    }

    /// Replaces the whole state by a snapshot read from `input` (what
    /// [`StateMachine::write_snapshot`] wrote, already checked against its CRC-32).
    /// This is also the state machine's chance to validate a snapshot from a leader:
    /// build the new state aside, and only once all of `input` was read and found
    /// sound, replace the current one. On an error the current state must be as it
    /// was; the node keeps running and fetches the snapshot again. By default it
    /// reads everything into memory and calls [`StateMachine::restore`].
    fn read_snapshot(&mut self, input: &mut dyn std::io::Read) -> Result<(), BoxError> {
        let mut data = Vec::new();
        input.read_to_end(&mut data)?;
        self.restore(&data)
    }
}
