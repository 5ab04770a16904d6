//! Binary frames: a postcard-encoded batch of messages (between easyraft nodes), the
//! caps a frame must keep (so decoding allocates at most about the frame's size), and
//! how a sender splits a batch to fit them. See docs/protocol.md, "Binary frames".

use raft_core::{Message, MessageBody};

use crate::error::WireError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::*;

    #[test]
    fn an_undecodable_frame_is_refused() {
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
