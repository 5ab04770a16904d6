//! The queue's state machine: topics of retained messages with dense offsets, and
//! their consumer groups' committed offsets and leases, in log time.

use std::collections::{BTreeMap, VecDeque};

use easyraft::{BoxError, LogIndex, StateMachine};
use serde::{Deserialize, Serialize};

use super::commands::{
    Batch, Delivery, GroupInfo, QueueAnswer, QueueCommand, QueueError, QueueQuery, QueueResult, QueueWritten,
    Retention, TopicInfo,
};
use super::limits::{
    MAX_BATCH_BYTES, MAX_GROUPS, MAX_LEASE_MS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_POLL, MAX_TOPICS,
    MAX_TOTAL_BYTES, MAX_TOTAL_MESSAGES,
};
use crate::api::{decode, encode};

/// A group's lease: who consumes for it, until when (log time, milliseconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    consumer: String,
    expires_at: u64,
}

/// A consumer group's position in a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Group {
    /// The next offset the group will consume: every message below it is done.
    committed: u64,
    /// The last lease granted (live while `expires_at > now`).
    lease: Option<Lease>,
}

/// One topic: the retained messages, offsets `first..first + messages.len()`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Topic {
    retention: Retention,
    messages: VecDeque<String>,
    /// The offset of `messages[0]` (or of the next message when empty).
    first: u64,
    /// The bytes of `messages`.
    bytes: u64,
    groups: BTreeMap<String, Group>,
}

impl Topic {
    fn next(&self) -> u64 {
        self.first.saturating_add(self.messages.len() as u64)
    }

    /// Drops the oldest messages while the topic is past its retention.
    fn trim(&mut self) {
        let r = self.retention;
        while self.messages.len() as u64 > r.max_messages || self.bytes > r.max_bytes {
            let Some(m) = self.messages.pop_front() else { break };
            self.first = self.first.saturating_add(1);
            self.bytes = self.bytes.saturating_sub(m.len() as u64);
        }
    }

    /// Up to `max` messages from offset `from` (or from the first kept, if `from`
    /// was dropped), stopping at [`MAX_BATCH_BYTES`].
    fn batch(&self, from: u64, max: u64) -> Batch {
        let start = from.max(self.first);
        let skip = usize::try_from(start - self.first).unwrap_or(usize::MAX);
        let (mut bytes, mut messages) = (0u64, Vec::new());
        for m in self.messages.iter().skip(skip) {
            if messages.len() as u64 >= max || (bytes >= MAX_BATCH_BYTES && !messages.is_empty()) {
                break;
            }
            bytes = bytes.saturating_add(m.len() as u64);
            messages.push(m.clone());
        }
        Batch {
            first: self.first,
            next: self.next(),
            start: start.min(self.next()),
            messages,
        }
    }

    fn info(&self, now: u64) -> TopicInfo {
        let groups = self
            .groups
            .iter()
            .map(|(name, g)| {
                let live = g.lease.as_ref().filter(|l| l.expires_at > now);
                let info = GroupInfo {
                    committed: g.committed,
                    owner: live.map(|l| l.consumer.clone()),
                    expires_at: live.map(|l| l.expires_at),
                };
                (name.clone(), info)
            })
            .collect();
        TopicInfo {
            first: self.first,
            next: self.next(),
            bytes: self.bytes,
            retention: self.retention,
            groups,
        }
    }
}

/// The queue's state.
#[derive(Default, Serialize, Deserialize)]
pub struct Queue {
    topics: BTreeMap<String, Topic>,
    /// The highest timestamp applied: the replicas' common clock.
    now: u64,
}

pub(super) fn check_name(what: &'static str, s: &str) -> Result<(), QueueError> {
    if s.is_empty() || s.len() > MAX_NAME_BYTES {
        return Err(QueueError::BadName {
            what: what.to_string(),
            limit: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

impl Queue {
    /// What the other topics' budgets leave for `topic`: (messages, bytes).
    fn free_budget(&self, topic: &str) -> (u64, u64) {
        let (m, b) =
            self.topics
                .iter()
                .filter(|(name, _)| name.as_str() != topic)
                .fold((0u64, 0u64), |(m, b), (_, t)| {
                    (
                        m.saturating_add(t.retention.max_messages),
                        b.saturating_add(t.retention.max_bytes),
                    )
                });
        (MAX_TOTAL_MESSAGES.saturating_sub(m), MAX_TOTAL_BYTES.saturating_sub(b))
    }

    /// Sets `topic`'s retention, creating it if needed, within the limits and budgets.
    fn create(&mut self, topic: String, retention: Retention) -> QueueResult {
        check_name("topic", &topic)?;
        let retention = retention.clamped();
        let exists = self.topics.contains_key(&topic);
        if !exists && self.topics.len() >= MAX_TOPICS {
            return Err(QueueError::TooManyTopics { limit: MAX_TOPICS });
        }
        let (free_messages, free_bytes) = self.free_budget(&topic);
        if retention.max_messages > free_messages || retention.max_bytes > free_bytes {
            return Err(QueueError::OverBudget {
                free_messages,
                free_bytes,
            });
        }
        let t = self.topics.entry(topic).or_default();
        t.retention = retention;
        t.trim();
        Ok(QueueWritten::Created {
            created: !exists,
            retention,
        })
    }

    fn enqueue(&mut self, index: LogIndex, topic: String, message: String) -> QueueResult {
        let bytes = message.len() as u64;
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::MessageTooLarge {
                bytes,
                limit: MAX_MESSAGE_BYTES as u64,
            });
        }
        if !self.topics.contains_key(&topic) {
            self.create(topic.clone(), Retention::default())?;
        }
        let t = self.topics.get_mut(&topic).ok_or(QueueError::NoSuchTopic { topic })?;
        if bytes > t.retention.max_bytes {
            return Err(QueueError::MessageTooLarge {
                bytes,
                limit: t.retention.max_bytes,
            });
        }
        let offset = t.next();
        t.messages.push_back(message);
        t.bytes = t.bytes.saturating_add(bytes);
        t.trim();
        Ok(QueueWritten::Enqueued {
            offset,
            index,
            first: t.first,
        })
    }

    fn poll(&mut self, topic: String, group: String, consumer: String, max: u64, lease_ms: u64) -> QueueResult {
        check_name("group", &group)?;
        check_name("consumer", &consumer)?;
        let now = self.now;
        let t = self.topics.get_mut(&topic).ok_or(QueueError::NoSuchTopic { topic })?;
        if !t.groups.contains_key(&group) && t.groups.len() >= MAX_GROUPS {
            return Err(QueueError::TooManyGroups { limit: MAX_GROUPS });
        }
        let first = t.first;
        let g = t.groups.entry(group).or_insert(Group {
            committed: first,
            lease: None,
        });
        if let Some(l) = g
            .lease
            .as_ref()
            .filter(|l| l.expires_at > now && l.consumer != consumer)
        {
            return Err(QueueError::LeaseHeld {
                owner: l.consumer.clone(),
                expires_at: l.expires_at,
            });
        }
        let expires_at = now.saturating_add(lease_ms.clamp(1, MAX_LEASE_MS));
        g.lease = Some(Lease { consumer, expires_at });
        let committed = g.committed;
        Ok(QueueWritten::Delivered(Delivery {
            batch: t.batch(committed, max.clamp(1, MAX_POLL)),
            committed,
            expires_at,
        }))
    }

    fn commit(&mut self, topic: String, group: String, consumer: String, offset: u64) -> QueueResult {
        let now = self.now;
        let t = self.topics.get_mut(&topic).ok_or(QueueError::NoSuchTopic { topic })?;
        let next = t.next();
        let Some(g) = t.groups.get_mut(&group) else {
            return Err(QueueError::NotOwner { owner: None });
        };
        match g.lease.as_ref().filter(|l| l.expires_at > now) {
            Some(l) if l.consumer == consumer => {}
            live => {
                return Err(QueueError::NotOwner {
                    owner: live.map(|l| l.consumer.clone()),
                })
            }
        }
        if offset < g.committed {
            return Err(QueueError::CommitBackwards {
                offset,
                committed: g.committed,
            });
        }
        if offset > next {
            return Err(QueueError::CommitPastEnd { offset, next });
        }
        g.committed = offset;
        Ok(QueueWritten::Committed { offset })
    }
}

impl StateMachine for Queue {
    type Command = QueueCommand;
    type Response = QueueResult;
    type Query = QueueQuery;
    type QueryResponse = QueueAnswer;

    fn apply(&mut self, index: LogIndex, cmd: QueueCommand) -> QueueResult {
        let stamp = match &cmd {
            QueueCommand::Create { now_ms, .. }
            | QueueCommand::Enqueue { now_ms, .. }
            | QueueCommand::Poll { now_ms, .. }
            | QueueCommand::Commit { now_ms, .. } => *now_ms,
        };
        self.now = self.now.max(stamp);
        match cmd {
            QueueCommand::Create { topic, retention, .. } => self.create(topic, retention),
            QueueCommand::Enqueue { topic, message, .. } => self.enqueue(index, topic, message),
            QueueCommand::Poll {
                topic,
                group,
                consumer,
                max,
                lease_ms,
                ..
            } => self.poll(topic, group, consumer, max, lease_ms),
            QueueCommand::Commit {
                topic,
                group,
                consumer,
                offset,
                ..
            } => self.commit(topic, group, consumer, offset),
        }
    }

    fn query(&self, q: QueueQuery) -> QueueAnswer {
        match q {
            QueueQuery::Info { topic, now_ms } => {
                let now = self.now.max(now_ms);
                QueueAnswer::Info(self.topics.get(&topic).map(|t| t.info(now)))
            }
            QueueQuery::Read { topic, offset, max } => {
                QueueAnswer::Messages(self.topics.get(&topic).map(|t| t.batch(offset, max.clamp(1, MAX_POLL))))
            }
        }
    }

    fn snapshot(&self) -> Result<bytes::Bytes, BoxError> {
        encode(self)
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        *self = decode(data)?;
        Ok(())
    }
}
