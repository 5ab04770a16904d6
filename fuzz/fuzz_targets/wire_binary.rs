//! The binary frame decoder (raft-wire): any bytes either decode into
//! messages within the frame caps or are refused; what decodes encodes and decodes
//! back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_wire::{decode_binary, encode_binary, MAX_ENTRIES_PER_FRAME, MAX_MESSAGES_PER_FRAME};

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = decode_binary(data) else { return };
    assert!(messages.len() <= MAX_MESSAGES_PER_FRAME);
    let entries: usize = messages
        .iter()
        .map(|m| match &m.body {
            raft_core::MessageBody::AppendEntries(a) => a.entries.len(),
            _ => 0,
        })
        .sum();
    assert!(entries <= MAX_ENTRIES_PER_FRAME);
    let again = encode_binary(&messages).expect("what decoded encodes");
    assert_eq!(decode_binary(&again).expect("and decodes again"), messages);
});
