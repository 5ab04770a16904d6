//! The binary stream's frames (`easyraft_client::stream`): any bytes decode to a frame
//! or a typed error, never a panic or an allocation past the frame's limits; a frame
//! that decodes encodes and decodes back to itself.
#![no_main]

use easyraft_client::stream::{decode, encode, StreamRequest, StreamResponse, MAX_FRAME, MAX_PER_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode::<StreamRequest>(data) {
        assert!(!frame.is_empty() && frame.len() <= MAX_PER_FRAME);
        let bytes = encode(&frame).expect("a decoded frame encodes");
        assert_eq!(decode::<StreamRequest>(&bytes).ok(), Some(frame));
    }
    if let Ok(frame) = decode::<StreamResponse>(data) {
        assert!(!frame.is_empty() && frame.len() <= MAX_PER_FRAME && data.len() <= MAX_FRAME);
        let bytes = encode(&frame).expect("a decoded frame encodes");
        assert_eq!(decode::<StreamResponse>(&bytes).ok(), Some(frame));
    }
});
