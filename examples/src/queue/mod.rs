//! A message queue: topics are ordered logs of messages with dense offsets from 0, and
//! consumer groups read them from a committed offset under a lease.
//!
//! Retention is per topic, by count and by bytes: past either, the oldest messages are
//! dropped, and every read reports the first offset still kept, so a consumer whose
//! committed offset is below it can tell it fell behind retention (and by how much).
//!
//! A poll is a write: it claims (or renews) the group's lease for the polling consumer
//! and answers the messages from the group's committed offset. Delivery is at least
//! once: what a consumer has not committed is delivered again, to it on its next poll,
//! or, once its lease ran out, to the consumer that takes over. Only the lease's owner
//! commits, and a commit never moves backwards or past the end (committing the same
//! offset again is a no-op, so a commit is safe to retry).
//!
//! Time comes from the log, as in [`crate::lock`]: each write carries the proposing
//! node's clock (`now_ms`) and the state machine keeps the highest stamp as "now", so
//! every replica expires the same leases and a leader with a lagging clock cannot move
//! time back.
//!
//! Everything is bounded: topics ([`MAX_TOPICS`]), groups per topic ([`MAX_GROUPS`]),
//! a message's bytes ([`MAX_MESSAGE_BYTES`]), a poll's messages ([`MAX_POLL`]) and
//! bytes ([`MAX_BATCH_BYTES`]); and the topics' retention budgets add up to at most
//! [`MAX_TOTAL_BYTES`] and [`MAX_TOTAL_MESSAGES`], so the whole queue's size is bounded
//! by construction, whatever the producers do.
//!
//! The pieces: the bounds (`limits`), what goes in and out of the state machine
//! (`commands`: writes, their results and refusals, reads and their answers), the
//! state machine (`machine`), and its JSON-RPC API (`rpc`).

mod commands;
mod limits;
mod machine;
mod rpc;

#[cfg(test)]
mod delivery_property;
#[cfg(test)]
mod tests;

pub use commands::{
    Batch, Delivery, GroupInfo, QueueAnswer, QueueCommand, QueueError, QueueQuery, QueueResult, QueueWritten,
    Retention, TopicInfo,
};
pub use limits::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, LIMIT_MAX_BYTES, LIMIT_MAX_MESSAGES, MAX_BATCH_BYTES, MAX_GROUPS,
    MAX_LEASE_MS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_POLL, MAX_TOPICS, MAX_TOTAL_BYTES, MAX_TOTAL_MESSAGES,
};
pub use machine::Queue;
pub use rpc::{rpc, rpc_for};
