//! The JSON shape of a Raft message that both text transports share: the WebSocket
//! JSON envelope's `payload` and the JSON-RPC methods' params are this object:
//! `{"from", "term", "group", ...the fields of the message type}`; the message type
//! and the target travel beside it (`messageType`/`targetNodeId`, or the method name and
//! the serving node). The fields are the message types' own serde form; byte strings
//! among them are base64 (`raft_core`'s `wire_bytes.rs`, see the crate docs).

use raft_core::{Message, MessageBody, NodeId};
use serde_json::{json, Map, Value};

use crate::error::PayloadError;

/// The payload object of `m` (everything but its type and target).
pub fn to_payload(m: &Message) -> Map<String, Value> {
    let mut payload = match serde_json::to_value(&m.body) {
        // Externally tagged: {"RequestVote": {...}}; a unit variant is a bare string.
        Ok(Value::Object(mut tagged)) => match tagged.remove(m.body.kind()) {
            Some(Value::Object(fields)) => fields,
            Some(other) => Map::from_iter([("result".to_string(), other)]),
            None => Map::new(),
        },
        _ => Map::new(),
    };
    payload.insert("from".into(), json!(m.from.as_str()));
    payload.insert("term".into(), json!(m.term));
    payload.insert("group".into(), json!(m.group));
    payload
}

/// Rebuilds a message of type `kind` for node `to` from its payload object.
pub fn from_payload(kind: &str, to: NodeId, mut payload: Map<String, Value>) -> Result<Message, PayloadError> {
    if !MessageBody::KINDS.contains(&kind) {
        return Err(PayloadError::UnknownKind(kind.to_string()));
    }
    let field = |m: &str| PayloadError::Field(m.to_string());
    let from = match payload.remove("from") {
        Some(Value::String(s)) if !s.is_empty() => NodeId::from(s),
        _ => return Err(field("from must be a non-empty string")),
    };
    let term = match payload.remove("term") {
        Some(v) => v.as_u64().ok_or_else(|| field("term must be an unsigned integer"))?,
        None => return Err(field("term is missing")),
    };
    let group = match payload.remove("group") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or_else(|| field("group must be an unsigned integer"))?,
    };
    let tagged = if kind == "TimeoutNow" {
        Value::String(kind.to_string())
    } else {
        let inner = match payload.remove("result") {
            Some(r) if payload.is_empty() => r,
            Some(r) => {
                payload.insert("result".into(), r);
                Value::Object(payload)
            }
            None => Value::Object(payload),
        };
        json!({ kind: inner })
    };
    let body: MessageBody = serde_json::from_value(tagged).map_err(|e| PayloadError::Field(format!("{kind}: {e}")))?;
    Ok(Message {
        group,
        from,
        to,
        term,
        body,
    })
}
