//! What travels in the frames: binary frames carry a postcard-encoded batch of
//! messages (between easyraft nodes); text frames carry a JSON envelope, one
//! message each, so any WebSocket client can speak to a node. See docs/protocol.md.

use crate::json::{self as wire_json, PayloadError};
use raft_core::{Message, MessageBody, NodeId};
use serde_json::{json, Map, Value};
use thiserror::Error;

/// The wire protocol version, sent in the handshake (`x-easyraft-protocol`).
pub const PROTOCOL_VERSION: u32 = 1;
/// Handshake header: the protocol version.
pub const HEADER_PROTOCOL: &str = "x-easyraft-protocol";
/// Handshake header: the cluster id; a node of another cluster is refused.
pub const HEADER_CLUSTER: &str = "x-easyraft-cluster";
/// Handshake header: the connecting node's id; its messages must come from it.
pub const HEADER_NODE: &str = "x-easyraft-node";

/// Why a frame was refused. The code is what a JSON client sees.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The text is not JSON, or not a JSON object.
    #[error("malformed JSON: {0}")]
    BadJson(String),
    /// `messageType` is missing or names no Raft message.
    #[error("unknown messageType {0:?}")]
    UnknownMessageType(String),
    /// A field is missing or has the wrong type.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// A binary frame that does not decode.
    #[error("undecodable binary frame: {0}")]
    BadBinary(String),
    /// The message is addressed to another node.
    #[error("message for {to} sent to {local}")]
    WrongTarget {
        /// The target named in the message.
        to: NodeId,
        /// This node.
        local: NodeId,
    },
    /// The message claims a sender other than the authenticated peer.
    #[error("message claims to be from {claimed} on a connection from {peer}")]
    WrongSender {
        /// The claimed sender.
        claimed: NodeId,
        /// The connection's node.
        peer: NodeId,
    },
    /// The node is overloaded and dropped the message.
    #[error("node overloaded; message dropped")]
    Overloaded,
    /// The node has stopped.
    #[error("node stopped")]
    NodeStopped,
}

impl WireError {
    /// The machine-readable code of the JSON error reply.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::BadJson(_) => "BadJson",
            WireError::UnknownMessageType(_) => "UnknownMessageType",
            WireError::BadPayload(_) => "BadPayload",
            WireError::BadBinary(_) => "BadBinary",
            WireError::WrongTarget { .. } => "WrongTarget",
            WireError::WrongSender { .. } => "WrongSender",
            WireError::Overloaded => "Overloaded",
            WireError::NodeStopped => "NodeStopped",
        }
    }
}

/// The most messages one binary frame may carry. A decoded `Message` takes ~200 bytes
/// however few bytes encode it (5 for a `TimeoutNow` between empty ids), so without a
/// cap a 60 MB frame decoded to gigabytes.
pub const MAX_MESSAGES_PER_FRAME: usize = 1024;

/// The most log entries (over all its AppendEntries) one binary frame may carry, for
/// the same reason (an entry decodes to ~90 bytes from 3). With the caps, decoding a
/// frame allocates at most its own size (payload bytes) plus a few megabytes.
pub const MAX_ENTRIES_PER_FRAME: usize = raft_core::MAX_ENTRIES_PER_MESSAGE;

/// The fewest bytes a postcard `Message` takes (group, two id lengths, term, kind).
const MIN_MESSAGE_BYTES: u64 = 5;

/// Splits a batch into runs that each fit one binary frame's message and entry caps.
pub fn frame_batches(messages: &[Message]) -> Vec<&[Message]> {
    let mut out = Vec::new();
    let (mut start, mut entries) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let n = entry_count(m);
        if i > start && (i - start == MAX_MESSAGES_PER_FRAME || entries + n > MAX_ENTRIES_PER_FRAME) {
            out.push(&messages[start..i]);
            (start, entries) = (i, 0);
        }
        entries += n;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

fn entry_count(m: &Message) -> usize {
    match &m.body {
        MessageBody::AppendEntries(a) => a.entries.len(),
        _ => 0,
    }
}

/// Encodes a batch for a binary frame (split it with [`frame_batches`] first).
pub fn encode_binary(messages: &[Message]) -> Result<Vec<u8>, WireError> {
    postcard::to_allocvec(messages).map_err(|e| WireError::BadBinary(e.to_string()))
}

/// Decodes a binary frame: a postcard sequence of messages, decoded one at a time so
/// that the caps hold before anything large is allocated. Refused: more than
/// [`MAX_MESSAGES_PER_FRAME`] messages or [`MAX_ENTRIES_PER_FRAME`] entries, a count
/// the frame is too short for, an empty `from` or `to`, bytes after the last message.
pub fn decode_binary(bytes: &[u8]) -> Result<Vec<Message>, WireError> {
    let bad = |e: postcard::Error| WireError::BadBinary(e.to_string());
    let (count, mut rest) = postcard::take_from_bytes::<u64>(bytes).map_err(bad)?;
    if count > MAX_MESSAGES_PER_FRAME as u64 {
        return Err(WireError::BadBinary(format!(
            "{count} messages in one frame, over the limit of {MAX_MESSAGES_PER_FRAME}"
        )));
    }
    if count.saturating_mul(MIN_MESSAGE_BYTES) > rest.len() as u64 {
        return Err(WireError::BadBinary(format!(
            "{count} messages declared in {} bytes",
            rest.len()
        )));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut entries = 0usize;
    for i in 0..count {
        let (m, tail) = postcard::take_from_bytes::<Message>(rest).map_err(bad)?;
        rest = tail;
        if m.from.as_str().is_empty() || m.to.as_str().is_empty() {
            return Err(WireError::BadBinary(format!("message {i}: empty node id")));
        }
        entries += entry_count(&m);
        if entries > MAX_ENTRIES_PER_FRAME {
            return Err(WireError::BadBinary(format!(
                "over {MAX_ENTRIES_PER_FRAME} entries in one frame"
            )));
        }
        out.push(m);
    }
    if !rest.is_empty() {
        return Err(WireError::BadBinary(format!(
            "{} bytes after the last message",
            rest.len()
        )));
    }
    Ok(out)
}

/// Encodes one message as the JSON envelope:
/// `{"messageType", "targetNodeId", "payload": {"from", "term", "group", ...}, "messageId"}`.
/// The payload is the JSON shape shared with the JSON-RPC transport
/// ([`raft_cluster::wire_json`]).
pub fn encode_envelope(m: &Message, message_id: &str) -> String {
    json!({
        "messageType": m.body.kind(),
        "targetNodeId": m.to.as_str(),
        "payload": wire_json::to_payload(m),
        "messageId": message_id,
    })
    .to_string()
}

/// A decoded envelope: the message and the client's message id (echoed in replies).
#[derive(Debug)]
pub struct Envelope {
    /// The Raft message.
    pub message: Message,
    /// The client's id for this message.
    pub message_id: Option<String>,
}

/// Decodes an envelope. On error, returns the message id too when it was readable, so
/// the error reply can name it.
pub fn decode_envelope(text: &str) -> Result<Envelope, (WireError, Option<String>)> {
    let v: Value = serde_json::from_str(text).map_err(|e| (WireError::BadJson(e.to_string()), None))?;
    let Value::Object(mut obj) = v else {
        return Err((WireError::BadJson("expected a JSON object".into()), None));
    };
    let message_id = match obj.remove("messageId") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let fail = |e: WireError| (e, message_id.clone());
    let kind = match obj.remove("messageType") {
        Some(Value::String(s)) if wire_json::MESSAGE_KINDS.contains(&s.as_str()) => s,
        Some(Value::String(s)) => return Err(fail(WireError::UnknownMessageType(s))),
        _ => return Err(fail(WireError::UnknownMessageType("<missing>".into()))),
    };
    let to = match obj.remove("targetNodeId") {
        Some(Value::String(s)) if !s.is_empty() => NodeId::from(s),
        _ => {
            return Err(fail(WireError::BadPayload(
                "targetNodeId must be a non-empty string".into(),
            )))
        }
    };
    let payload = match obj.remove("payload") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(fail(WireError::BadPayload("payload must be an object".into()))),
    };
    let message = wire_json::from_payload(&kind, to, payload).map_err(|e| match e {
        PayloadError::UnknownKind(k) => fail(WireError::UnknownMessageType(k)),
        other => fail(WireError::BadPayload(format!("payload: {other}"))),
    })?;
    Ok(Envelope { message, message_id })
}

/// The reply to a text frame that was accepted.
pub fn ack(message_id: Option<&str>) -> String {
    json!({ "messageType": "Ack", "messageId": message_id }).to_string()
}

/// The reply to a text frame that was refused.
pub fn error_reply(message_id: Option<&str>, e: &WireError) -> String {
    json!({
        "messageType": "Error",
        "messageId": message_id,
        "error": { "code": e.code(), "message": e.to_string() },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use raft_core::*;

    fn all_kinds() -> Vec<MessageBody> {
        let meta = SnapshotMeta {
            index: 4,
            term: 2,
            membership: Membership::with_voters(["a", "b"]),
        };
        vec![
            MessageBody::RequestVote(VoteRequest {
                pre_vote: true,
                last_log_index: 3,
                last_log_term: 1,
                leadership_transfer: false,
            }),
            MessageBody::RequestVoteResponse(VoteResponse {
                pre_vote: false,
                granted: true,
            }),
            MessageBody::AppendEntries(AppendRequest {
                prev_log_index: 1,
                prev_log_term: 1,
                entries: vec![
                    Entry {
                        term: 2,
                        index: 2,
                        payload: EntryPayload::Command(Bytes::from_static(b"x")),
                    },
                    Entry {
                        term: 2,
                        index: 3,
                        payload: EntryPayload::Noop,
                    },
                ],
                commit: 1,
            }),
            MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index: 3 }),
            MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
                rejected_index: 3,
                hint_index: 2,
                hint_term: 1,
            }),
            MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm),
            MessageBody::Heartbeat(Heartbeat {
                commit: 3,
                read_round: 9,
            }),
            MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: 9 }),
            MessageBody::InstallSnapshot(SnapshotChunk {
                meta,
                offset: 0,
                data: Bytes::from_static(b"snap"),
                done: true,
                total: 4,
                crc: 7,
            }),
            MessageBody::InstallSnapshotResponse(SnapshotResponse {
                index: 4,
                last_index: 4,
                received: 4,
                done: true,
            }),
            MessageBody::TimeoutNow,
            MessageBody::ReadIndex(ReadIndexRequest {
                context: Bytes::from_static(b"c"),
            }),
            MessageBody::ReadIndexResponse(ReadIndexResponse {
                context: Bytes::from_static(b"c"),
                index: 3,
            }),
        ]
    }

    #[test]
    fn every_message_kind_round_trips_through_both_encodings() {
        for body in all_kinds() {
            let m = Message {
                group: 0,
                from: "node1".into(),
                to: "node2".into(),
                term: 3,
                body,
            };
            let text = encode_envelope(&m, "id-1");
            let env = decode_envelope(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(env.message, m, "{text}");
            assert_eq!(env.message_id.as_deref(), Some("id-1"));
            let bin = encode_binary(std::slice::from_ref(&m)).unwrap();
            assert_eq!(decode_binary(&bin).unwrap(), vec![m]);
        }
    }

    #[test]
    fn bad_envelopes_get_typed_errors_with_the_message_id() {
        let cases = [
            ("not json", "BadJson"),
            ("[1,2]", "BadJson"),
            (r#"{"messageType":"Nope","messageId":"7"}"#, "UnknownMessageType"),
            (
                r#"{"messageType":"Heartbeat","targetNodeId":"n","messageId":"7"}"#,
                "BadPayload",
            ),
            (
                r#"{"messageType":"Heartbeat","targetNodeId":"n","payload":{"from":"a","term":"x"},"messageId":"7"}"#,
                "BadPayload",
            ),
            (
                r#"{"messageType":"Heartbeat","targetNodeId":"n","payload":{"from":"a","term":1,"commit":-1},"messageId":"7"}"#,
                "BadPayload",
            ),
        ];
        for (text, code) in cases {
            let (e, _) = decode_envelope(text).expect_err(text);
            assert_eq!(e.code(), code, "{text}");
        }
        let (_, id) = decode_envelope(r#"{"messageType":"Nope","messageId":"7"}"#).unwrap_err();
        assert_eq!(id.as_deref(), Some("7"));
        assert!(decode_binary(&[0xff, 0xff, 0xff]).is_err());
    }

    fn timeout_now(from: &str, to: &str) -> Message {
        Message {
            group: 0,
            from: NodeId::new(from),
            to: NodeId::new(to),
            term: 1,
            body: MessageBody::TimeoutNow,
        }
    }

    #[test]
    fn a_huge_frame_of_tiny_messages_is_refused_before_decoding_them() {
        // 2 million 5-byte messages between empty ids: 10 MB that decoded to ~470 MiB.
        let mut frame = postcard::to_allocvec(&2_000_000u64).unwrap();
        let one = postcard::to_allocvec(&timeout_now("", "")).unwrap();
        assert_eq!(one.len(), 5);
        for _ in 0..2_000_000 {
            frame.extend_from_slice(&one);
        }
        let e = decode_binary(&frame).unwrap_err();
        assert!(e.to_string().contains("over the limit of 1024"), "{e}");
        // A count the bytes cannot hold is refused too, without a huge allocation.
        let mut lying = postcard::to_allocvec(&1000u64).unwrap();
        lying.extend_from_slice(&one);
        assert!(decode_binary(&lying).unwrap_err().to_string().contains("declared"));
    }

    #[test]
    fn empty_ids_and_trailing_bytes_are_refused() {
        for (from, to) in [("", "b"), ("a", "")] {
            let frame = encode_binary(&[timeout_now(from, to)]).unwrap();
            let e = decode_binary(&frame).unwrap_err();
            assert!(e.to_string().contains("empty node id"), "{e}");
        }
        let mut frame = encode_binary(&[timeout_now("a", "b")]).unwrap();
        assert_eq!(decode_binary(&frame).unwrap(), vec![timeout_now("a", "b")]);
        frame.extend_from_slice(b"junk");
        let e = decode_binary(&frame).unwrap_err();
        assert!(e.to_string().contains("4 bytes after the last message"), "{e}");
    }

    #[test]
    fn too_many_entries_are_refused_in_one_message_and_in_one_frame_and_batches_split_to_fit() {
        let append = |n: usize| Message {
            body: MessageBody::AppendEntries(AppendRequest {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: (0..n)
                    .map(|i| Entry {
                        term: 1,
                        index: i as u64 + 1,
                        payload: EntryPayload::Noop,
                    })
                    .collect(),
                commit: 0,
            }),
            ..timeout_now("a", "b")
        };
        // One message over the per-message cap: refused by the entries' decoder.
        let frame = encode_binary(&[append(MAX_ENTRIES_PER_MESSAGE + 1)]).unwrap();
        assert!(decode_binary(&frame).is_err());
        // Two messages within it each, over the frame's cap together.
        let batch = vec![append(MAX_ENTRIES_PER_FRAME), append(1)];
        let frame = encode_binary(&batch).unwrap();
        assert!(decode_binary(&frame)
            .unwrap_err()
            .to_string()
            .contains("entries in one frame"));
        // The sender splits such batches (and long ones) into frames the receiver takes.
        let split = frame_batches(&batch);
        assert_eq!(split.len(), 2);
        let many: Vec<Message> = (0..2500).map(|_| timeout_now("a", "b")).collect();
        let split = frame_batches(&many);
        assert_eq!(split.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1024, 1024, 452]);
        for b in split {
            assert_eq!(decode_binary(&encode_binary(b).unwrap()).unwrap().len(), b.len());
        }
    }
}
