//! The queue's bounds: with them, the whole queue's size is bounded by construction.

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
