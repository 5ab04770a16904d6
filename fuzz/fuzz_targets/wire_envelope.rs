//! The WebSocket JSON envelope decoder (raft-wire): any text either decodes into a
//! message or is refused with a typed error; what decodes encodes and decodes back
//! the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_wire::{decode_envelope, encode_envelope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(env) = decode_envelope(text) else { return };
    let again = encode_envelope(&env.message, "m");
    let back = decode_envelope(&again).expect("what decoded encodes and decodes again");
    assert_eq!(back.message, env.message);
});
