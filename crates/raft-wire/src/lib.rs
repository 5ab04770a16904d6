//! # raft-wire
//!
//! easyraft's wire formats, in one place: how a [`raft_core::Message`] travels between
//! nodes and to and from other programs. The transports (`raft-transport-ws`,
//! `raft-transport-jsonrpc`) own the sockets; this crate owns the bytes and the text.
//!
//! ```
//! use raft_core::{Heartbeat, Message, MessageBody};
//!
//! let m = Message {
//!     group: 0,
//!     from: "node1".into(),
//!     to: "node2".into(),
//!     term: 3,
//!     body: MessageBody::Heartbeat(Heartbeat { commit: 41, read_round: 12 }),
//! };
//!
//! // Between easyraft nodes: a binary frame, a postcard batch of messages.
//! let frame = raft_wire::encode_binary(std::slice::from_ref(&m)).unwrap();
//! assert_eq!(raft_wire::decode_binary(&frame).unwrap(), vec![m.clone()]);
//!
//! // For any JSON client: the payload object both text transports carry, beside the
//! // message type and the target.
//! let payload = raft_wire::to_payload(&m);
//! assert_eq!(payload["commit"], 41);
//! let back = raft_wire::from_payload(m.body.kind(), m.to.clone(), payload).unwrap();
//! assert_eq!(back, m);
//! ```
//!
//! What is where:
//!
//! - **Binary frames** (`binary.rs`): [`encode_binary`], [`decode_binary`] and the caps
//!   a frame must keep, [`MAX_MESSAGES_PER_FRAME`] and [`MAX_ENTRIES_PER_FRAME`];
//!   [`frame_batches`] splits a batch to fit them.
//! - **The JSON payload** (`json.rs`): [`to_payload`] and [`from_payload`], the object
//!   `{"from", "term", "group", ...}` that is both the WebSocket envelope's `payload`
//!   and the JSON-RPC methods' params. The message type names are
//!   [`MessageBody::KINDS`](raft_core::MessageBody::KINDS), what
//!   [`MessageBody::kind`](raft_core::MessageBody::kind) answers.
//! - **The WebSocket JSON envelope** (`envelope.rs`): [`encode_envelope`],
//!   [`decode_envelope`] and the replies to a text frame, [`ack`] and [`error_reply`].
//! - **The handshake** (`handshake.rs`): [`PROTOCOL_VERSION`] and the headers
//!   [`HEADER_PROTOCOL`], [`HEADER_CLUSTER`], [`HEADER_NODE`].
//! - **Errors** (`error.rs`): [`WireError`] for a frame, [`PayloadError`] for a payload.
//!
//! Byte strings (commands, snapshot chunks, read contexts) are raw bytes in postcard
//! and one base64 string (standard alphabet, padded) in JSON; on input JSON also takes
//! an array of numbers 0–255. That representation is the `#[serde(with)]` of
//! raft-core's own `Bytes` fields, so it lives beside them, in
//! `crates/raft-core/src/wire_bytes.rs` (raft-core depends on serde alone, and this
//! crate depends on raft-core).
//!
//! The formats are specified, with an example of every message, in `docs/protocol.md`.
#![warn(missing_docs, unreachable_pub)]

mod binary;
mod envelope;
mod error;
mod handshake;
mod json;
#[cfg(test)]
mod round_trip_tests;

pub use binary::{decode_binary, encode_binary, frame_batches, MAX_ENTRIES_PER_FRAME, MAX_MESSAGES_PER_FRAME};
pub use envelope::{ack, decode_envelope, encode_envelope, error_reply, Envelope};
pub use error::{PayloadError, WireError};
pub use handshake::{HEADER_CLUSTER, HEADER_NODE, HEADER_PROTOCOL, PROTOCOL_VERSION};
pub use json::{from_payload, to_payload};
