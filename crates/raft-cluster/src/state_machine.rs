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

    /// Serializes the whole state (for snapshots).
    fn snapshot(&self) -> Result<Bytes, BoxError>;

    /// Replaces the whole state by a snapshot.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), BoxError>;
}
