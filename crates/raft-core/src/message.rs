//! The wire message every transport carries. Plain data with serde derives: the
//! WebSocket transport sends it as postcard or JSON, the JSON-RPC transport as JSON.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, SnapshotMeta};
use crate::types::{LogIndex, NodeId, Term};

/// The id of a Raft group. One group per process by default; the field exists so that
/// transports can multiplex many groups over one connection later without a wire break.
pub type GroupId = u64;

/// A message between two Raft nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The Raft group the message belongs to.
    pub group: GroupId,
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of Raft message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// RequestVote (§5.2), or a pre-vote (dissertation §9.6) when `pre_vote` is set.
    RequestVote(VoteRequest),
    /// The answer to a [`MessageBody::RequestVote`].
    RequestVoteResponse(VoteResponse),
    /// AppendEntries with entries (§5.3).
    AppendEntries(AppendRequest),
    /// The answer to a [`MessageBody::AppendEntries`].
    AppendEntriesResponse(AppendResponse),
    /// An AppendEntries without entries: keeps followers from campaigning, carries the
    /// commit index and confirms leadership for ReadIndex.
    Heartbeat(Heartbeat),
    /// The answer to a [`MessageBody::Heartbeat`].
    HeartbeatResponse(HeartbeatResponse),
    /// InstallSnapshot (§7): one chunk of a snapshot.
    InstallSnapshot(SnapshotChunk),
    /// The answer to a [`MessageBody::InstallSnapshot`].
    InstallSnapshotResponse(SnapshotResponse),
    /// Tells the target of a leadership transfer to campaign at once (dissertation §3.10).
    TimeoutNow,
    /// A follower forwards a linearizable read to the leader.
    ReadIndex(ReadIndexRequest),
    /// The leader's answer to a forwarded read: the index the read must wait for.
    ReadIndexResponse(ReadIndexResponse),
    /// With `Config::quiesce`: the leader of an idle group tells a caught-up follower
    /// to stop its election timer until something wakes it. Last in the enum, so the
    /// postcard encodings of the other kinds are unchanged.
    Quiesce(Quiesce),
}

/// RequestVote's arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// A pre-vote: nobody changes term or records a vote for it.
    pub pre_vote: bool,
    /// The index of the candidate's last log entry.
    pub last_log_index: LogIndex,
    /// The term of the candidate's last log entry.
    pub last_log_term: Term,
    /// Set when the campaign was started by a leadership transfer: voters then grant
    /// even though they heard from a leader recently.
    pub leadership_transfer: bool,
}

/// RequestVote's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    /// Answers a pre-vote.
    pub pre_vote: bool,
    /// Whether the vote was granted.
    pub granted: bool,
}

/// AppendEntries' arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest {
    /// The index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// The term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// The entries to store, in index order. At most
    /// [`MAX_ENTRIES_PER_MESSAGE`]: decoding refuses more, so that a
    /// frame of tiny entries cannot allocate far more than its own size.
    #[serde(deserialize_with = "bounded_entries")]
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub commit: LogIndex,
}

/// AppendEntries' result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResponse {
    /// The follower's log now matches the leader's up to `match_index`.
    Accepted {
        /// The last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The log-matching check failed at `rejected_index` (the request's
    /// `prev_log_index`). The hint lets the leader skip a whole term of conflicting
    /// entries at once instead of one entry per round trip.
    Rejected {
        /// The `prev_log_index` that did not match.
        rejected_index: LogIndex,
        /// The largest index of the follower's log at or below `rejected_index`
        /// whose term is at most `hint_term`.
        hint_index: LogIndex,
        /// The term of the follower's entry at `hint_index`.
        hint_term: Term,
    },
    /// The request's term was stale; the response carries the responder's newer term.
    StaleTerm,
}

/// A heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The commit index the follower may adopt: the leader's commit, capped at what
    /// the leader knows the follower holds.
    pub commit: LogIndex,
    /// The leader's read round; echoed back, it proves leadership for reads.
    pub read_round: u64,
}

/// A heartbeat's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The read round of the heartbeat being answered.
    pub read_round: u64,
}

/// One chunk of InstallSnapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// What the whole snapshot covers.
    pub meta: SnapshotMeta,
    /// The byte offset of `data` in the snapshot.
    pub offset: u64,
    /// The bytes of this chunk.
    #[serde(with = "crate::wire_bytes")]
    pub data: Bytes,
    /// Whether this is the last chunk.
    pub done: bool,
    /// The length of the whole snapshot's data.
    pub total: u64,
    /// The CRC-32 (IEEE) of the whole snapshot's data: the receiver checks it before
    /// the snapshot replaces anything, and asks again from the start if it differs.
    pub crc: u32,
}

/// InstallSnapshot's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    /// The snapshot index the response is about.
    pub index: LogIndex,
    /// The follower's last log index after handling the chunk.
    pub last_index: LogIndex,
    /// Bytes received so far (the leader resumes sending from here).
    pub received: u64,
    /// The snapshot is installed (or the follower already had everything in it).
    pub done: bool,
}

/// The leader's request to quiesce, with what the follower checks before it obeys:
/// its log must end at `last_index` with an entry of `last_term` (so, by Log
/// Matching, it equals the leader's log), and its commit index must then be
/// `commit`. Otherwise it answers, and the leader resumes normal replication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiesce {
    /// The leader's commit index (equal to `last_index`: the leader quiesces only
    /// once everything is committed).
    pub commit: LogIndex,
    /// The index of the leader's last log entry.
    pub last_index: LogIndex,
    /// The term of the leader's last log entry.
    pub last_term: Term,
    /// The leader's last heartbeat round: a heartbeat of this round or older that
    /// arrives late (overtaken by this message) tells the quiesced follower nothing
    /// new and does not wake it.
    pub read_round: u64,
}

/// A read forwarded by a follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexRequest {
    /// The caller's context, returned with the result.
    #[serde(with = "crate::wire_bytes")]
    pub context: Bytes,
}

/// The leader's answer to a forwarded read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexResponse {
    /// The caller's context.
    #[serde(with = "crate::wire_bytes")]
    pub context: Bytes,
    /// The index the follower must have applied before it serves the read.
    pub index: LogIndex,
}

impl MessageBody {
    /// Every message type's name, in the order of the variants: what
    /// [`kind`](Self::kind) answers, and the names the JSON envelope and the JSON-RPC
    /// methods accept.
    pub const KINDS: [&'static str; 12] = [
        "RequestVote",
        "RequestVoteResponse",
        "AppendEntries",
        "AppendEntriesResponse",
        "Heartbeat",
        "HeartbeatResponse",
        "InstallSnapshot",
        "InstallSnapshotResponse",
        "TimeoutNow",
        "ReadIndex",
        "ReadIndexResponse",
        "Quiesce",
    ];

    /// The message type's name ([`KINDS`](Self::KINDS)), as used in logs and the JSON
    /// envelope of the WebSocket transport.
    pub fn kind(&self) -> &'static str {
        let i = match self {
            MessageBody::RequestVote(_) => 0,
            MessageBody::RequestVoteResponse(_) => 1,
            MessageBody::AppendEntries(_) => 2,
            MessageBody::AppendEntriesResponse(_) => 3,
            MessageBody::Heartbeat(_) => 4,
            MessageBody::HeartbeatResponse(_) => 5,
            MessageBody::InstallSnapshot(_) => 6,
            MessageBody::InstallSnapshotResponse(_) => 7,
            MessageBody::TimeoutNow => 8,
            MessageBody::ReadIndex(_) => 9,
            MessageBody::ReadIndexResponse(_) => 10,
            MessageBody::Quiesce(_) => 11,
        };
        Self::KINDS[i]
    }
}

impl fmt::Display for Message {
    /// One line: `node1->node2 t3 AppendEntries prev=4/2 n=3 commit=4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} t{} {}", self.from, self.to, self.term, self.body.kind())?;
        match &self.body {
            MessageBody::RequestVote(v) => write!(
                f,
                "{} last={}/{}{}",
                if v.pre_vote { "(pre)" } else { "" },
                v.last_log_index,
                v.last_log_term,
                if v.leadership_transfer { " transfer" } else { "" }
            ),
            MessageBody::RequestVoteResponse(v) => write!(
                f,
                "{} {}",
                if v.pre_vote { "(pre)" } else { "" },
                if v.granted { "granted" } else { "rejected" }
            ),
            MessageBody::AppendEntries(a) => write!(
                f,
                " prev={}/{} n={} commit={}",
                a.prev_log_index,
                a.prev_log_term,
                a.entries.len(),
                a.commit
            ),
            MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index }) => {
                write!(f, " ok match={match_index}")
            }
            MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
                rejected_index,
                hint_index,
                hint_term,
            }) => write!(f, " reject at={rejected_index} hint={hint_index}/{hint_term}"),
            MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm) => f.write_str(" stale-term"),
            MessageBody::Heartbeat(h) => write!(f, " commit={} round={}", h.commit, h.read_round),
            MessageBody::HeartbeatResponse(h) => write!(f, " round={}", h.read_round),
            MessageBody::InstallSnapshot(s) => write!(
                f,
                " snap={}/{} off={} len={}{}",
                s.meta.index,
                s.meta.term,
                s.offset,
                s.data.len(),
                if s.done { " done" } else { "" }
            ),
            MessageBody::InstallSnapshotResponse(s) => write!(
                f,
                " snap={} last={} received={}{}",
                s.index,
                s.last_index,
                s.received,
                if s.done { " done" } else { "" }
            ),
            MessageBody::TimeoutNow => Ok(()),
            MessageBody::ReadIndex(r) => write!(f, " ctx[{}B]", r.context.len()),
            MessageBody::ReadIndexResponse(r) => write!(f, " ctx[{}B] index={}", r.context.len(), r.index),
            MessageBody::Quiesce(q) => write!(
                f,
                " commit={} last={}/{} round={}",
                q.commit, q.last_index, q.last_term, q.read_round
            ),
        }
    }
}

/// The most entries one AppendEntries may carry; decoding refuses more (and
/// `Config::max_entries_per_msg` may not exceed it).
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1 << 16;

/// Deserializes `AppendRequest::entries`, refusing more than
/// [`MAX_ENTRIES_PER_MESSAGE`] before allocating for them.
fn bounded_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Entry>, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<Entry>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {} entries", MAX_ENTRIES_PER_MESSAGE)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
            let max = MAX_ENTRIES_PER_MESSAGE;
            if seq.size_hint().is_some_and(|n| n > max) {
                return Err(serde::de::Error::invalid_length(seq.size_hint().unwrap_or(0), &self));
            }
            // Grow as entries arrive: a declared length is not trusted for allocation.
            let mut out = Vec::new();
            while let Some(e) = seq.next_element()? {
                if out.len() == max {
                    return Err(serde::de::Error::invalid_length(max + 1, &self));
                }
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded)
}
