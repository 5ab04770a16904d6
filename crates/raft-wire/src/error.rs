//! Why bytes or text are not a message: [`WireError`] for a frame (its code is what a
//! JSON client sees in the error reply) and [`PayloadError`] for a JSON payload object.

use raft_core::NodeId;
use thiserror::Error;

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
    /// The node runs no Raft group with the message's group id (never created there, or
    /// removed).
    #[error("no group {group} on this node")]
    UnknownGroup {
        /// The message's group.
        group: u64,
    },
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
            WireError::UnknownGroup { .. } => "UnknownGroup",
        }
    }
}

/// Why a JSON payload is not a message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// The message type is unknown.
    #[error("unknown message type {0:?}")]
    UnknownKind(String),
    /// A field is missing or has the wrong type.
    #[error("{0}")]
    Field(String),
}
