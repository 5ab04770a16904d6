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

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use easyraft::{BoxError, LogIndex, StateMachine};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{bad, count_param, decode, encode, field, flag_param, now_ms, Hosts, Node, BAD_REQUEST};

/// The most topics.
pub const MAX_TOPICS: usize = 256;
/// The most consumer groups one topic may have.
pub const MAX_GROUPS: usize = 64;
/// The longest topic, group or consumer name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The largest message, in bytes (UTF-8).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The most messages one poll or read answers.
pub const MAX_POLL: u64 = 1000;
/// A poll or read stops adding messages once they reach this many bytes (it always
/// answers at least one message when there is one).
pub const MAX_BATCH_BYTES: u64 = 1 << 20;
/// The longest lease a consumer may ask for.
pub const MAX_LEASE_MS: u64 = 3600 * 1000;
/// A topic's retention by count when not given.
pub const DEFAULT_MAX_MESSAGES: u64 = 10_000;
/// A topic's retention by bytes when not given.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 20;
/// The largest retention by count a topic may have.
pub const LIMIT_MAX_MESSAGES: u64 = 1_000_000;
/// The largest retention by bytes a topic may have.
pub const LIMIT_MAX_BYTES: u64 = 64 << 20;
/// What the topics' retention budgets by bytes may add up to.
pub const MAX_TOTAL_BYTES: u64 = 512 << 20;
/// What the topics' retention budgets by count may add up to.
pub const MAX_TOTAL_MESSAGES: u64 = 4_000_000;

/// How much of a topic is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Past this many messages, the oldest are dropped (1 to [`LIMIT_MAX_MESSAGES`]).
    pub max_messages: u64,
    /// Past this many bytes of messages, the oldest are dropped (1 to
    /// [`LIMIT_MAX_BYTES`]); a larger message is refused.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_messages: DEFAULT_MAX_MESSAGES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl Retention {
    /// Within the limits (a command from the log is clamped, never trusted).
    fn clamped(self) -> Retention {
        Retention {
            max_messages: self.max_messages.clamp(1, LIMIT_MAX_MESSAGES),
            max_bytes: self.max_bytes.clamp(1, LIMIT_MAX_BYTES),
        }
    }
}

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

/// Messages of a topic from `start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The first offset the topic still keeps: a consumer asking from below it fell
    /// behind retention.
    pub first: u64,
    /// The offset the next message will get.
    pub next: u64,
    /// The offset of `messages[0]`: the offset asked for, or `first` if that was dropped.
    pub start: u64,
    /// The messages at `start`, `start + 1`, ...
    pub messages: Vec<String>,
}

/// What a poll delivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The messages from the committed offset.
    pub batch: Batch,
    /// The group's committed offset.
    pub committed: u64,
    /// When the consumer's lease ends (log time).
    pub expires_at: u64,
}

/// A group as [`QueueQuery::Info`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The committed offset.
    pub committed: u64,
    /// The consumer holding a live lease, if any.
    pub owner: Option<String>,
    /// When that lease ends.
    pub expires_at: Option<u64>,
}

/// A topic as [`QueueQuery::Info`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// The first offset kept.
    pub first: u64,
    /// The offset the next message will get.
    pub next: u64,
    /// The bytes of the kept messages.
    pub bytes: u64,
    /// The topic's retention.
    pub retention: Retention,
    /// Its consumer groups.
    pub groups: BTreeMap<String, GroupInfo>,
}

/// The queue's state.
#[derive(Default, Serialize, Deserialize)]
pub struct Queue {
    topics: BTreeMap<String, Topic>,
    /// The highest timestamp applied: the replicas' common clock.
    now: u64,
}

/// A write; `now_ms` is stamped by the node that proposes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum QueueCommand {
    /// Creates a topic, or changes its retention (dropping what is now past it).
    Create {
        /// The topic.
        topic: String,
        /// Its retention.
        retention: Retention,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Appends a message (creating the topic with the default retention if needed).
    Enqueue {
        /// The topic.
        topic: String,
        /// The message.
        message: String,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Claims or renews the group's lease for `consumer` and delivers from the
    /// group's committed offset (a new group starts at the first offset kept).
    Poll {
        /// The topic.
        topic: String,
        /// The consumer group.
        group: String,
        /// The consumer.
        consumer: String,
        /// The most messages to deliver.
        max: u64,
        /// The lease from now.
        lease_ms: u64,
        /// The proposer's clock.
        now_ms: u64,
    },
    /// Moves the group's committed offset (the next offset to consume) forward.
    Commit {
        /// The topic.
        topic: String,
        /// The consumer group.
        group: String,
        /// The consumer, which must hold the group's lease.
        consumer: String,
        /// The new committed offset.
        offset: u64,
        /// The proposer's clock.
        now_ms: u64,
    },
}

/// A write that succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueWritten {
    /// The topic exists with this retention (`created`: it did not before).
    Created {
        /// Whether this write created it.
        created: bool,
        /// Its retention now.
        retention: Retention,
    },
    /// The message is at `offset`, appended by the log entry at `index`.
    Enqueued {
        /// Its offset in the topic.
        offset: u64,
        /// The log index of the enqueue.
        index: LogIndex,
        /// The first offset kept after it (retention may have dropped older ones).
        first: u64,
    },
    /// A poll's delivery.
    Delivered(Delivery),
    /// The group's committed offset now.
    Committed {
        /// The committed offset.
        offset: u64,
    },
}

/// Why a write was refused (nothing changed). Serialized as the JSON-RPC error's
/// `data`, with the variant as `reason`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum QueueError {
    /// The topic does not exist.
    #[error("no topic {topic:?}")]
    NoSuchTopic {
        /// The topic asked for.
        topic: String,
    },
    /// There are [`MAX_TOPICS`] topics already.
    #[error("there are {limit} topics already")]
    TooManyTopics {
        /// [`MAX_TOPICS`].
        limit: usize,
    },
    /// The topic has [`MAX_GROUPS`] groups already.
    #[error("the topic has {limit} consumer groups already")]
    TooManyGroups {
        /// [`MAX_GROUPS`].
        limit: usize,
    },
    /// The topics' retention budgets would add up to more than the queue holds.
    #[error("retention budgets full: {free_messages} messages and {free_bytes} bytes left to give a topic")]
    OverBudget {
        /// What is left of [`MAX_TOTAL_MESSAGES`].
        free_messages: u64,
        /// What is left of [`MAX_TOTAL_BYTES`].
        free_bytes: u64,
    },
    /// The message is larger than [`MAX_MESSAGE_BYTES`] or the topic's retention.
    #[error("the message has {bytes} bytes; the limit is {limit}")]
    MessageTooLarge {
        /// The message's size.
        bytes: u64,
        /// The largest allowed.
        limit: u64,
    },
    /// A name is empty or longer than [`MAX_NAME_BYTES`].
    #[error("`{what}` must be 1 to {limit} bytes")]
    BadName {
        /// Which name.
        what: String,
        /// [`MAX_NAME_BYTES`].
        limit: usize,
    },
    /// Another consumer holds the group's lease.
    #[error("the group's lease is held by {owner:?} until {expires_at}")]
    LeaseHeld {
        /// The consumer holding it.
        owner: String,
        /// When it ends (log time).
        expires_at: u64,
    },
    /// The committer does not hold the group's lease (it ran out, or another
    /// consumer's is live, or the group never polled): poll again.
    #[error("not the group's lease owner (the owner is {owner:?}); poll again")]
    NotOwner {
        /// The consumer holding a live lease, if any.
        owner: Option<String>,
    },
    /// A commit below the committed offset.
    #[error("offset {offset} is below the committed offset {committed}")]
    CommitBackwards {
        /// The offset asked for.
        offset: u64,
        /// The committed offset.
        committed: u64,
    },
    /// A commit past the topic's end.
    #[error("offset {offset} is past the topic's end {next}")]
    CommitPastEnd {
        /// The offset asked for.
        offset: u64,
        /// The offset the next message will get.
        next: u64,
    },
}

/// A write's result.
pub type QueueResult = Result<QueueWritten, QueueError>;

/// A read.
#[derive(Clone, Debug)]
pub enum QueueQuery {
    /// A topic's offsets, bytes, retention and groups.
    Info {
        /// The topic.
        topic: String,
        /// The reader's clock (a lease that ran out is not shown as owned).
        now_ms: u64,
    },
    /// Messages from an offset, without a group.
    Read {
        /// The topic.
        topic: String,
        /// The first offset wanted.
        offset: u64,
        /// The most messages (clamped to [`MAX_POLL`]).
        max: u64,
    },
}

/// A read's answer (`None`: no such topic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueAnswer {
    /// The topic's state.
    Info(Option<TopicInfo>),
    /// The messages read.
    Messages(Option<Batch>),
}

fn check_name(what: &'static str, s: &str) -> Result<(), QueueError> {
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

/// A refusal as a JSON-RPC error: `-32602` (do not retry as is) with the
/// [`QueueError`] as `data` (`reason` and its fields).
fn refused(e: QueueError) -> ErrorObjectOwned {
    let data = serde_json::to_value(&e).unwrap_or(Value::Null);
    ErrorObject::owned(BAD_REQUEST, e.to_string(), Some(data))
}

fn name(p: &Value, key: &'static str) -> Result<String, ErrorObjectOwned> {
    let s: String = field(p, key)?;
    check_name(key, &s).map_err(refused)?;
    Ok(s)
}

fn messages_json(b: &Batch) -> Vec<Value> {
    (b.start..)
        .zip(&b.messages)
        .map(|(offset, m)| json!({"offset": offset, "message": m}))
        .collect()
}

fn written(r: QueueResult) -> Result<Value, ErrorObjectOwned> {
    Ok(match r.map_err(refused)? {
        QueueWritten::Created { created, retention } => json!({
            "created": created, "max_messages": retention.max_messages, "max_bytes": retention.max_bytes,
        }),
        QueueWritten::Enqueued { offset, index, first } => json!({"offset": offset, "index": index, "first": first}),
        QueueWritten::Delivered(d) => json!({
            "messages": messages_json(&d.batch),
            "committed": d.committed,
            "first": d.batch.first,
            "next": d.batch.next,
            // Messages retention dropped before the group consumed them.
            "lost": d.batch.first.saturating_sub(d.committed),
            "expires_at": d.expires_at,
        }),
        QueueWritten::Committed { offset } => json!({ "committed": offset }),
    })
}

fn info_json(topic: &str, i: &TopicInfo) -> Value {
    let groups: serde_json::Map<String, Value> = i
        .groups
        .iter()
        .map(|(name, g)| {
            let v = json!({"committed": g.committed, "owner": g.owner, "expires_at": g.expires_at});
            (name.clone(), v)
        })
        .collect();
    json!({
        "topic": topic, "first": i.first, "next": i.next, "bytes": i.bytes,
        "max_messages": i.retention.max_messages, "max_bytes": i.retention.max_bytes, "groups": groups,
    })
}

fn no_topic(topic: String) -> ErrorObjectOwned {
    refused(QueueError::NoSuchTopic { topic })
}

/// The queue API: `queue_create {topic, max_messages?, max_bytes?}` (or change a
/// topic's retention), `queue_enqueue {topic, message}` → `{offset, index, first}`,
/// `queue_poll {topic, group, consumer, max?, lease_ms?}` → `{messages: [{offset,
/// message}], committed, first, next, lost, expires_at}`, `queue_commit {topic, group,
/// consumer, offset}` → `{committed}`, and the linearizable reads (`stale: true` reads
/// this node's state) `queue_info {topic}` and `queue_read {topic, offset?, max?}`.
/// Refusals are `-32602` with the [`QueueError`] in `data` (`reason`: `lease_held`,
/// `not_owner`, `commit_backwards`, ...).
pub fn rpc(node: Node<Queue>) -> RpcModule<Node<Queue>> {
    rpc_for(node)
}

/// [`rpc`] over any state machine that carries the queue (see [`Hosts`]).
pub fn rpc_for<M: Hosts<Queue>>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let _ = m.register_async_method(
        "queue_create",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let retention = Retention {
                max_messages: count_param(&p, "max_messages", DEFAULT_MAX_MESSAGES, LIMIT_MAX_MESSAGES)?,
                max_bytes: count_param(&p, "max_bytes", DEFAULT_MAX_BYTES, LIMIT_MAX_BYTES)?,
            };
            let cmd = QueueCommand::Create {
                topic: name(&p, "topic")?,
                retention,
                now_ms: now_ms(),
            };
            written(node.propose::<Queue>(&p, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_enqueue",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let topic = name(&p, "topic")?;
            let message: String = field(&p, "message")?;
            if message.len() > MAX_MESSAGE_BYTES {
                return Err(refused(QueueError::MessageTooLarge {
                    bytes: message.len() as u64,
                    limit: MAX_MESSAGE_BYTES as u64,
                }));
            }
            let cmd = QueueCommand::Enqueue {
                topic,
                message,
                now_ms: now_ms(),
            };
            written(node.propose::<Queue>(&p, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_poll",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = QueueCommand::Poll {
                topic: name(&p, "topic")?,
                group: name(&p, "group")?,
                consumer: name(&p, "consumer")?,
                max: count_param(&p, "max", 100, MAX_POLL)?,
                lease_ms: count_param(&p, "lease_ms", 30_000, MAX_LEASE_MS)?,
                now_ms: now_ms(),
            };
            // Never in a session: a poll is safe to repeat (it delivers again from the
            // committed offset), and a session would keep every delivered batch.
            written(node.propose::<Queue>(&Value::Null, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_commit",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = QueueCommand::Commit {
                topic: name(&p, "topic")?,
                group: name(&p, "group")?,
                consumer: name(&p, "consumer")?,
                offset: field(&p, "offset")?,
                now_ms: now_ms(),
            };
            written(node.propose::<Queue>(&p, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_info",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let topic = name(&p, "topic")?;
            let q = QueueQuery::Info {
                topic: topic.clone(),
                now_ms: now_ms(),
            };
            match node.query::<Queue>(q, flag_param(&p, "stale")?).await? {
                QueueAnswer::Info(Some(i)) => Ok(info_json(&topic, &i)),
                QueueAnswer::Info(None) => Err(no_topic(topic)),
                _ => Err(bad("unexpected answer")),
            }
        },
    );
    let _ = m.register_async_method(
        "queue_read",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let topic = name(&p, "topic")?;
            let offset: u64 = match p.get("offset") {
                None | Some(Value::Null) => 0,
                Some(_) => field(&p, "offset")?,
            };
            let q = QueueQuery::Read {
                topic: topic.clone(),
                offset,
                max: count_param(&p, "max", 100, MAX_POLL)?,
            };
            match node.query::<Queue>(q, flag_param(&p, "stale")?).await? {
                QueueAnswer::Messages(Some(b)) => Ok(json!({
                    "messages": messages_json(&b), "first": b.first, "next": b.next,
                })),
                QueueAnswer::Messages(None) => Err(no_topic(topic)),
                _ => Err(bad("unexpected answer")),
            }
        },
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn create(q: &mut Queue, topic: &str, max_messages: u64, max_bytes: u64) -> QueueResult {
        let retention = Retention {
            max_messages,
            max_bytes,
        };
        q.apply(
            1,
            QueueCommand::Create {
                topic: topic.into(),
                retention,
                now_ms: 0,
            },
        )
    }

    fn enqueue(q: &mut Queue, topic: &str, message: &str) -> QueueResult {
        let cmd = QueueCommand::Enqueue {
            topic: topic.into(),
            message: message.into(),
            now_ms: 0,
        };
        q.apply(7, cmd)
    }

    fn poll(q: &mut Queue, consumer: &str, max: u64, now_ms: u64) -> QueueResult {
        q.apply(
            9,
            QueueCommand::Poll {
                topic: "t".into(),
                group: "g".into(),
                consumer: consumer.into(),
                max,
                lease_ms: 1000,
                now_ms,
            },
        )
    }

    fn commit(q: &mut Queue, consumer: &str, offset: u64, now_ms: u64) -> QueueResult {
        q.apply(
            10,
            QueueCommand::Commit {
                topic: "t".into(),
                group: "g".into(),
                consumer: consumer.into(),
                offset,
                now_ms,
            },
        )
    }

    fn delivered(r: QueueResult) -> (u64, Vec<String>, u64) {
        match r {
            Ok(QueueWritten::Delivered(d)) => (d.batch.start, d.batch.messages, d.committed),
            other => panic!("{other:?}"),
        }
    }

    fn read(q: &Queue, offset: u64) -> Batch {
        match q.query(QueueQuery::Read {
            topic: "t".into(),
            offset,
            max: 100,
        }) {
            QueueAnswer::Messages(Some(b)) => b,
            other => panic!("{other:?}"),
        }
    }

    fn info(q: &Queue, now_ms: u64) -> TopicInfo {
        match q.query(QueueQuery::Info {
            topic: "t".into(),
            now_ms,
        }) {
            QueueAnswer::Info(Some(i)) => i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn offsets_are_dense_and_retention_drops_the_oldest_by_count_or_bytes() {
        let mut q = Queue::default();
        assert!(matches!(
            create(&mut q, "t", 3, 10),
            Ok(QueueWritten::Created { created: true, .. })
        ));
        for (i, m) in ["aa", "bb", "cc"].iter().enumerate() {
            let r = enqueue(&mut q, "t", m);
            assert!(
                matches!(r, Ok(QueueWritten::Enqueued { offset, index: 7, first: 0 }) if offset == i as u64),
                "{r:?}"
            );
        }
        // Past the count: offset 0 goes, and a read from it starts at the first kept.
        assert!(matches!(
            enqueue(&mut q, "t", "dd"),
            Ok(QueueWritten::Enqueued {
                offset: 3,
                first: 1,
                ..
            })
        ));
        let b = read(&q, 0);
        assert_eq!((b.first, b.next, b.start), (1, 4, 1));
        assert_eq!(b.messages, ["bb", "cc", "dd"]);
        // Past the count and the bytes (6 + 7 > 10): two go.
        let r = enqueue(&mut q, "t", "eeeeeee");
        assert!(
            matches!(
                r,
                Ok(QueueWritten::Enqueued {
                    offset: 4,
                    first: 3,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(read(&q, 0).messages, ["dd", "eeeeeee"]);
        assert_eq!(info(&q, 0).bytes, 9);
        // A message larger than the topic's budget is refused, not dropped at once.
        let big = enqueue(&mut q, "t", "01234567890");
        assert_eq!(big, Err(QueueError::MessageTooLarge { bytes: 11, limit: 10 }));
        // A group that starts late starts at the first offset kept; one that fell behind
        // is told how far.
        let (start, msgs, committed) = delivered(poll(&mut q, "c", 10, 0));
        assert_eq!((start, msgs.len(), committed), (3, 2, 3));
        assert_eq!(commit(&mut q, "c", 4, 0), Ok(QueueWritten::Committed { offset: 4 }));
        for m in ["f", "g", "h"] {
            enqueue(&mut q, "t", m).unwrap();
        }
        let (start, msgs, committed) = delivered(poll(&mut q, "c", 10, 0));
        assert_eq!(
            (start, committed),
            (5, 4),
            "offset 4 was dropped before the group got to it"
        );
        assert_eq!(msgs, ["f", "g", "h"]);
        // Shrinking the retention trims at once; reading past the end is empty.
        assert!(matches!(
            create(&mut q, "t", 1, 10),
            Ok(QueueWritten::Created { created: false, .. })
        ));
        let b = read(&q, 100);
        assert_eq!((b.first, b.next, b.start, b.messages.len()), (7, 8, 8, 0));
    }

    #[test]
    fn a_live_lease_is_exclusive_and_after_it_expires_in_log_time_another_consumer_resumes_from_the_commit() {
        let mut q = Queue::default();
        for i in 0..5 {
            enqueue(&mut q, "t", &format!("m{i}")).unwrap();
        }
        let (start, msgs, _) = delivered(poll(&mut q, "a", 3, 10_000));
        assert_eq!((start, msgs), (0, vec!["m0".to_string(), "m1".into(), "m2".into()]));
        commit(&mut q, "a", 2, 10_100).unwrap();
        // b is refused while a's lease (10_000 + 1000) lives, and told until when.
        let held = poll(&mut q, "b", 3, 10_500);
        assert_eq!(
            held,
            Err(QueueError::LeaseHeld {
                owner: "a".into(),
                expires_at: 11_000
            })
        );
        // A proposer with a lagging clock cannot move log time back and expire it early.
        assert!(matches!(
            poll(&mut q, "b", 3, 11_000 - 1),
            Err(QueueError::LeaseHeld { .. })
        ));
        assert_eq!(info(&q, 0).groups["g"].owner.as_deref(), Some("a"));
        // A reader's clock past the lease shows no owner before any write moves log time.
        assert_eq!(info(&q, 11_000).groups["g"].owner, None);
        // Once log time passes the lease, b takes over from the committed offset: m2 is
        // delivered again, m0 and m1 are not.
        let (start, msgs, committed) = delivered(poll(&mut q, "b", 10, 11_000));
        assert_eq!((start, committed, msgs.len()), (2, 2, 3));
        // a's lease is gone: it can neither commit nor take the group back.
        assert_eq!(
            commit(&mut q, "a", 3, 11_001),
            Err(QueueError::NotOwner {
                owner: Some("b".into())
            })
        );
        assert!(matches!(
            poll(&mut q, "a", 1, 11_002),
            Err(QueueError::LeaseHeld { .. })
        ));
        // Renewing extends b's lease from the new log time.
        let Ok(QueueWritten::Delivered(d)) = poll(&mut q, "b", 1, 11_500) else {
            panic!()
        };
        assert_eq!(d.expires_at, 12_500);
    }

    #[test]
    fn only_the_owner_commits_never_backwards_never_past_the_end_and_a_repeat_is_a_no_op() {
        let mut q = Queue::default();
        // Committing to a group that never polled, or on a missing topic.
        assert_eq!(
            commit(&mut q, "a", 0, 0),
            Err(QueueError::NoSuchTopic { topic: "t".into() })
        );
        for i in 0..3 {
            enqueue(&mut q, "t", &format!("m{i}")).unwrap();
        }
        assert_eq!(commit(&mut q, "a", 0, 0), Err(QueueError::NotOwner { owner: None }));
        delivered(poll(&mut q, "a", 10, 0));
        assert_eq!(
            commit(&mut q, "b", 1, 1),
            Err(QueueError::NotOwner {
                owner: Some("a".into())
            })
        );
        assert_eq!(commit(&mut q, "a", 2, 1), Ok(QueueWritten::Committed { offset: 2 }));
        assert_eq!(commit(&mut q, "a", 2, 2), Ok(QueueWritten::Committed { offset: 2 }));
        assert_eq!(
            commit(&mut q, "a", 1, 3),
            Err(QueueError::CommitBackwards {
                offset: 1,
                committed: 2
            })
        );
        assert_eq!(
            commit(&mut q, "a", 4, 4),
            Err(QueueError::CommitPastEnd { offset: 4, next: 3 })
        );
        assert_eq!(
            commit(&mut q, "a", u64::MAX, 5),
            Err(QueueError::CommitPastEnd {
                offset: u64::MAX,
                next: 3
            })
        );
        assert_eq!(commit(&mut q, "a", 3, 6), Ok(QueueWritten::Committed { offset: 3 }));
        // After the lease ran out, even the last owner must poll again.
        assert_eq!(commit(&mut q, "a", 3, 1000), Err(QueueError::NotOwner { owner: None }));
        assert_eq!(info(&q, 0).groups["g"].committed, 3);
    }

    #[test]
    fn topics_groups_names_messages_and_budgets_are_bounded() {
        let mut q = Queue::default();
        let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(matches!(
            enqueue(&mut q, "t", &huge),
            Err(QueueError::MessageTooLarge { .. })
        ));
        assert!(matches!(
            enqueue(&mut q, "", "m"),
            Err(QueueError::BadName { what, .. }) if what == "topic"
        ));
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(enqueue(&mut q, &long, "m"), Err(QueueError::BadName { .. })));
        // Budgets: the retention of every topic adds up to at most the totals.
        assert!(create(&mut q, "big", LIMIT_MAX_MESSAGES, LIMIT_MAX_BYTES).is_ok());
        let mut made = 1;
        loop {
            match create(&mut q, &format!("t{made}"), 1, LIMIT_MAX_BYTES) {
                Ok(_) => made += 1,
                Err(QueueError::OverBudget { free_bytes, .. }) => {
                    assert!(free_bytes < LIMIT_MAX_BYTES);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(made as u64, MAX_TOTAL_BYTES / LIMIT_MAX_BYTES);
        // Retention out of range is clamped when it comes from the log.
        let Ok(QueueWritten::Created { retention, .. }) = create(&mut q, "big", 0, 0) else {
            panic!()
        };
        assert_eq!((retention.max_messages, retention.max_bytes), (1, 1));
        // The topic count.
        let mut q = Queue::default();
        for i in 0..MAX_TOPICS {
            create(&mut q, &format!("t{i}"), 1, 1).unwrap();
        }
        assert_eq!(
            enqueue(&mut q, "one-more", "m"),
            Err(QueueError::TooManyTopics { limit: MAX_TOPICS })
        );
        // The groups of a topic, and a poll's size.
        let mut q = Queue::default();
        for i in 0..(MAX_POLL + 5) {
            enqueue(&mut q, "t", &i.to_string()).unwrap();
        }
        for g in 0..MAX_GROUPS {
            let cmd = QueueCommand::Poll {
                topic: "t".into(),
                group: format!("g{g}"),
                consumer: "c".into(),
                max: u64::MAX,
                lease_ms: u64::MAX,
                now_ms: u64::MAX,
            };
            let Ok(QueueWritten::Delivered(d)) = q.apply(1, cmd) else {
                panic!()
            };
            assert_eq!(d.batch.messages.len() as u64, MAX_POLL);
            assert_eq!(d.expires_at, u64::MAX, "saturates");
        }
        assert_eq!(
            poll(&mut q, "c", 1, 0),
            Err(QueueError::TooManyGroups { limit: MAX_GROUPS })
        );
    }

    #[test]
    fn a_batch_stops_at_its_byte_budget_but_always_carries_one_message() {
        let mut q = Queue::default();
        create(&mut q, "t", 100, LIMIT_MAX_BYTES).unwrap();
        let m = "y".repeat(MAX_MESSAGE_BYTES);
        for _ in 0..40 {
            enqueue(&mut q, "t", &m).unwrap();
        }
        let b = read(&q, 0);
        assert_eq!(b.messages.len() as u64, MAX_BATCH_BYTES / MAX_MESSAGE_BYTES as u64);
        assert!(!read(&q, 39).messages.is_empty());
    }

    #[test]
    fn a_snapshot_round_trips_messages_offsets_groups_and_log_time() {
        let mut q = Queue::default();
        create(&mut q, "t", 2, 100).unwrap();
        for m in ["a", "b", "c"] {
            enqueue(&mut q, "t", m).unwrap();
        }
        delivered(poll(&mut q, "a", 1, 5_000));
        commit(&mut q, "a", 2, 5_001).unwrap();
        let mut back = Queue::default();
        back.restore(&q.snapshot().unwrap()).unwrap();
        assert_eq!(info(&back, 0), info(&q, 0));
        assert_eq!(read(&back, 0), read(&q, 0));
        // Log time came along: the lease is still a's.
        assert!(matches!(poll(&mut back, "b", 1, 0), Err(QueueError::LeaseHeld { .. })));
        assert!(back.restore(b"garbage").is_err());
    }

    #[test]
    fn refusals_carry_their_reason_and_fields_as_data() {
        let e = refused(QueueError::LeaseHeld {
            owner: "a".into(),
            expires_at: 5,
        });
        assert_eq!(e.code(), BAD_REQUEST);
        let data: Value = serde_json::from_str(e.data().unwrap().get()).unwrap();
        assert_eq!(data, json!({"reason": "lease_held", "owner": "a", "expires_at": 5}));
    }

    /// One step of a consumer group's life.
    #[derive(Clone, Debug)]
    enum Op {
        Enqueue,
        Poll {
            consumer: u8,
            max: u64,
        },
        /// Commit `ahead` past the last delivery's start (may be past what it delivered).
        Commit {
            consumer: u8,
            ahead: u64,
        },
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Enqueue),
            3 => (0..2u8, 1..6u64).prop_map(|(consumer, max)| Op::Poll { consumer, max }),
            3 => (0..2u8, 0..8u64).prop_map(|(consumer, ahead)| Op::Commit { consumer, ahead }),
            1 => (0..1500u64).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever the consumers do, each delivery is contiguous from the group's
        /// committed offset (or the first kept, past retention), the committed offset
        /// only grows, and a message is the one enqueued at its offset.
        #[test]
        fn deliveries_are_contiguous_from_the_committed_offset(ops in proptest::collection::vec(op(), 1..80)) {
            let mut q = Queue::default();
            create(&mut q, "t", 6, 1000).unwrap();
            let mut sent: Vec<String> = Vec::new();
            let (mut now, mut last_start) = (1_000u64, 0u64);
            // The group's committed offset, once its first poll created it.
            let mut committed: Option<u64> = None;
            for op in ops {
                match op {
                    Op::Enqueue => {
                        let m = format!("m{}", sent.len());
                        enqueue(&mut q, "t", &m).unwrap();
                        sent.push(m);
                    }
                    Op::Poll { consumer, max } => match poll(&mut q, &format!("c{consumer}"), max, now) {
                        Ok(QueueWritten::Delivered(d)) => {
                            let b = d.batch;
                            // A new group starts at the first offset kept.
                            let committed = *committed.get_or_insert(b.first);
                            prop_assert_eq!(d.committed, committed);
                            prop_assert_eq!(b.start, committed.max(b.first));
                            prop_assert_eq!(b.next, sent.len() as u64);
                            let want = (b.next - b.start).min(max);
                            prop_assert_eq!(b.messages.len() as u64, want);
                            for (offset, m) in (b.start..).zip(&b.messages) {
                                prop_assert_eq!(m, &sent[offset as usize]);
                            }
                            last_start = b.start;
                        }
                        Err(QueueError::LeaseHeld { owner, .. }) => prop_assert_ne!(owner, format!("c{consumer}")),
                        Err(QueueError::NoSuchTopic { .. }) => prop_assert!(sent.is_empty()),
                        other => prop_assert!(false, "{:?}", other),
                    },
                    Op::Commit { consumer, ahead } => {
                        let offset = last_start.saturating_add(ahead);
                        match commit(&mut q, &format!("c{consumer}"), offset, now) {
                            Ok(QueueWritten::Committed { offset: c }) => {
                                prop_assert!(committed.is_some_and(|old| c >= old) && c <= sent.len() as u64);
                                committed = Some(c);
                            }
                            Err(QueueError::CommitBackwards { committed: c, .. }) => {
                                prop_assert!(offset < c);
                                prop_assert_eq!(Some(c), committed);
                            }
                            Err(QueueError::CommitPastEnd { next, .. }) => prop_assert!(offset > next),
                            Err(QueueError::NotOwner { .. } | QueueError::NoSuchTopic { .. }) => {}
                            other => prop_assert!(false, "{:?}", other),
                        }
                    }
                    Op::Wait(ms) => now += ms,
                }
            }
        }
    }
}
