//! Text frames: the JSON envelope that carries one message, so any WebSocket client can
//! speak to a node, and the `Ack` and `Error` replies to it. The envelope's `payload`
//! is the [JSON payload](crate::to_payload) the JSON-RPC transport shares. See
//! docs/protocol.md, "Text frames" and "Replies to text frames".

use raft_core::{Message, MessageBody, NodeId};
use serde_json::{json, Map, Value};

use crate::error::{PayloadError, WireError};
use crate::json::{from_payload, to_payload};

/// Encodes one message as the JSON envelope:
/// `{"messageType", "targetNodeId", "payload": {"from", "term", "group", ...}, "messageId"}`.
/// The payload is the JSON shape shared with the JSON-RPC transport
/// ([`to_payload`]).
pub fn encode_envelope(m: &Message, message_id: &str) -> String {
    json!({
        "messageType": m.body.kind(),
        "targetNodeId": m.to.as_str(),
        "payload": to_payload(m),
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
        Some(Value::String(s)) if MessageBody::KINDS.contains(&s.as_str()) => s,
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
    let message = from_payload(&kind, to, payload).map_err(|e| match e {
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
    }
}
