//! The message queue: `queue_create`, `queue_enqueue`, `queue_poll`, `queue_commit`,
//! `queue_info`, `queue_read`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{ms, typed, Read};
use crate::client::Client;
use crate::error::Error;
use crate::policy::CallKind;

/// Topics as ordered logs, consumed by groups that commit offsets under a lease.
#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
}

/// Where an enqueued message went.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Enqueued {
    /// Its offset in the topic.
    pub offset: u64,
    /// The log index of the enqueue.
    pub index: u64,
    /// The first offset the topic keeps (retention may have dropped older ones).
    pub first: u64,
}

/// A message and its offset.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Its offset.
    pub offset: u64,
    /// Its text.
    pub message: String,
}

/// What a poll delivered to the group's lease holder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Delivery {
    /// The messages from the group's committed offset.
    pub messages: Vec<Message>,
    /// The group's committed offset.
    pub committed: u64,
    /// The first offset the topic keeps.
    pub first: u64,
    /// The offset the next message will get.
    pub next: u64,
    /// Messages retention dropped before the group consumed them.
    pub lost: u64,
    /// When the consumer's lease ends (log time).
    pub expires_at: u64,
}

/// Messages read without a group.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Messages {
    /// The messages.
    pub messages: Vec<Message>,
    /// The first offset the topic keeps.
    pub first: u64,
    /// The offset the next message will get.
    pub next: u64,
}

/// A consumer group as `queue_info` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GroupInfo {
    /// Its committed offset.
    pub committed: u64,
    /// The consumer holding a live lease.
    pub owner: Option<String>,
    /// When that lease ends.
    pub expires_at: Option<u64>,
}

/// A topic's state.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TopicInfo {
    /// The first offset kept.
    pub first: u64,
    /// The offset the next message will get.
    pub next: u64,
    /// Bytes kept.
    pub bytes: u64,
    /// Retention by count.
    pub max_messages: u64,
    /// Retention by bytes.
    pub max_bytes: u64,
    /// The consumer groups.
    pub groups: BTreeMap<String, GroupInfo>,
}

#[derive(Deserialize)]
struct Committed {
    committed: u64,
}

impl Queue {
    /// The queue through `client`.
    pub fn new(client: Client) -> Queue {
        Queue { client }
    }

    /// Creates `topic` (or changes its retention) keeping at most `max_messages`
    /// messages and `max_bytes` bytes.
    pub async fn create(&self, topic: &str, max_messages: u64, max_bytes: u64) -> Result<(), Error> {
        let p = json!({"topic": topic, "max_messages": max_messages, "max_bytes": max_bytes});
        let _: serde_json::Value = typed(&self.client, "queue_create", CallKind::IdempotentWrite, p).await?;
        Ok(())
    }

    /// Appends `message` to `topic`. Not idempotent: in a client session (see
    /// [`Client::with_sessions`]) it is retried safely and lands once.
    pub async fn enqueue(&self, topic: &str, message: &str) -> Result<Enqueued, Error> {
        let p = json!({"topic": topic, "message": message});
        typed(&self.client, "queue_enqueue", CallKind::Write, p).await
    }

    /// Claims (or renews) the lease of `group` for `consumer` for `lease`, and returns
    /// up to `max` messages from the group's committed offset.
    pub async fn poll(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: u64,
        lease: Duration,
    ) -> Result<Delivery, Error> {
        let p = json!({"topic": topic, "group": group, "consumer": consumer, "max": max, "lease_ms": ms(lease)});
        typed(&self.client, "queue_poll", CallKind::IdempotentWrite, p).await
    }

    /// Commits `offset` (the next one the group wants) for `group`, as its lease
    /// holder `consumer`; the committed offset.
    pub async fn commit(&self, topic: &str, group: &str, consumer: &str, offset: u64) -> Result<u64, Error> {
        let p = json!({"topic": topic, "group": group, "consumer": consumer, "offset": offset});
        let c: Committed = typed(&self.client, "queue_commit", CallKind::IdempotentWrite, p).await?;
        Ok(c.committed)
    }

    /// The state of `topic`.
    pub async fn info(&self, topic: &str, read: Read) -> Result<TopicInfo, Error> {
        let p = json!({"topic": topic, "stale": read.stale()});
        typed(&self.client, "queue_info", CallKind::Read, p).await
    }

    /// Up to `max` messages of `topic` from `offset`, without a group.
    pub async fn read(&self, topic: &str, offset: u64, max: u64, read: Read) -> Result<Messages, Error> {
        let p = json!({"topic": topic, "offset": offset, "max": max, "stale": read.stale()});
        typed(&self.client, "queue_read", CallKind::Read, p).await
    }
}
