//! What goes in and out of the queue's state machine: the writes ([`QueueCommand`]),
//! what a write did ([`QueueWritten`]) or why it was refused ([`QueueError`]), the
//! reads ([`QueueQuery`]) and their answers ([`QueueAnswer`]).

use std::collections::BTreeMap;

use easyraft::LogIndex;
use serde::{Deserialize, Serialize};

use super::limits::{DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, LIMIT_MAX_BYTES, LIMIT_MAX_MESSAGES};

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
    pub(super) fn clamped(self) -> Retention {
        Retention {
            max_messages: self.max_messages.clamp(1, LIMIT_MAX_MESSAGES),
            max_bytes: self.max_bytes.clamp(1, LIMIT_MAX_BYTES),
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
    /// There are [`MAX_TOPICS`](super::MAX_TOPICS) topics already.
    #[error("there are {limit} topics already")]
    TooManyTopics {
        /// [`MAX_TOPICS`](super::MAX_TOPICS).
        limit: usize,
    },
    /// The topic has [`MAX_GROUPS`](super::MAX_GROUPS) groups already.
    #[error("the topic has {limit} consumer groups already")]
    TooManyGroups {
        /// [`MAX_GROUPS`](super::MAX_GROUPS).
        limit: usize,
    },
    /// The topics' retention budgets would add up to more than the queue holds.
    #[error("retention budgets full: {free_messages} messages and {free_bytes} bytes left to give a topic")]
    OverBudget {
        /// What is left of [`MAX_TOTAL_MESSAGES`](super::MAX_TOTAL_MESSAGES).
        free_messages: u64,
        /// What is left of [`MAX_TOTAL_BYTES`](super::MAX_TOTAL_BYTES).
        free_bytes: u64,
    },
    /// The message is larger than [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES) or the topic's retention.
    #[error("the message has {bytes} bytes; the limit is {limit}")]
    MessageTooLarge {
        /// The message's size.
        bytes: u64,
        /// The largest allowed.
        limit: u64,
    },
    /// A name is empty or longer than [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES).
    #[error("`{what}` must be 1 to {limit} bytes")]
    BadName {
        /// Which name.
        what: String,
        /// [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES).
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
        /// The most messages (clamped to [`MAX_POLL`](super::MAX_POLL)).
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
