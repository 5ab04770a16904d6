//! The JSON payload shared by the WebSocket JSON envelope and the JSON-RPC transport's
//! params: any message type name and any JSON object either give a message or a typed
//! error; what decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_core::{MessageBody, NodeId};
use raft_wire::{from_payload, to_payload};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = MessageBody::KINDS[pick as usize % MessageBody::KINDS.len()];
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let Ok(m) = from_payload(kind, NodeId::from("me"), payload) else {
        return;
    };
    let back = from_payload(m.body.kind(), m.to.clone(), to_payload(&m)).expect("round trip");
    assert_eq!(back, m);
});
