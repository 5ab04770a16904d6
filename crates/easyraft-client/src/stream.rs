//! The binary stream protocol of the client port (docs/server-api.md, "Binary stream"):
//! one WebSocket connection (`GET /v1/stream`) carries many JSON-RPC calls at once.
//! Every binary message is one postcard-encoded frame, a list of [`StreamRequest`]s
//! (client to server) or of [`StreamResponse`]s (server to client). The server answers
//! each request as it completes, in any order; a response carries its request's `id`.
//!
//! The frame types and [`encode`]/[`decode`] are shared by the server (`examples`'
//! `stream` module) and by this crate's client ([`crate::stream_client`]).
//!
//! ```
//! use easyraft_client::stream::{decode, encode, StreamRequest};
//!
//! let frame = vec![StreamRequest { id: 7, method: "kv_get".into(), params: r#"{"key":"a"}"#.into() }];
//! let bytes = encode(&frame).unwrap();
//! let back: Vec<StreamRequest> = decode(&bytes).unwrap();
//! assert_eq!(back, frame);
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The path of the stream on the client port.
pub const PATH: &str = "/v1/stream";

/// The largest frame (one WebSocket message), either way: the HTTP path's largest body.
pub const MAX_FRAME: usize = 8 << 20;

/// The most requests (or responses) in one frame.
pub const MAX_PER_FRAME: usize = 256;

/// The most requests a connection may have in flight; past it the server stops reading
/// the socket until some complete.
pub const MAX_IN_FLIGHT: usize = 1024;

/// The most request bytes (method and params) a connection may have in flight; past it
/// the server stops reading the socket until some complete.
pub const MAX_IN_FLIGHT_BYTES: usize = 4 * MAX_FRAME;

/// One call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRequest {
    /// Chosen by the client; its response carries it back.
    pub id: u64,
    /// The JSON-RPC method.
    pub method: String,
    /// The params, as JSON text (an object or an array).
    pub params: String,
}

/// The answer to the request `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResponse {
    /// The request's id.
    pub id: u64,
    /// Its result or error.
    pub outcome: StreamOutcome,
}

/// A result or a JSON-RPC error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamOutcome {
    /// The JSON-RPC result, as JSON text.
    Ok(String),
    /// The JSON-RPC error.
    Err {
        /// The code (docs/server-api.md).
        code: i64,
        /// The message.
        message: String,
        /// The error's data, as JSON text.
        data: Option<String>,
    },
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The frame is larger than [`MAX_FRAME`].
    #[error("frame of {bytes} bytes is over the limit of {limit}")]
    TooLarge {
        /// Its size (when encoding: at least this).
        bytes: usize,
        /// [`MAX_FRAME`].
        limit: usize,
    },
    /// The frame holds more than [`MAX_PER_FRAME`] items.
    #[error("frame of {count} items is over the limit of {limit}")]
    TooMany {
        /// The count it claims.
        count: u64,
        /// [`MAX_PER_FRAME`].
        limit: usize,
    },
    /// The frame holds no item.
    #[error("empty frame")]
    Empty,
    /// Not a frame (postcard says why), or bytes after its end.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Encodes a frame of `items` (1 to [`MAX_PER_FRAME`], at most [`MAX_FRAME`] bytes).
pub fn encode<T: Serialize>(items: &[T]) -> Result<Vec<u8>, FrameError> {
    check_count(items.len() as u64)?;
    let bytes = postcard::to_stdvec(items).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_FRAME,
        });
    }
    Ok(bytes)
}

/// The encoded size of one item in a frame (for packing items into frames).
pub fn encoded_len<T: Serialize>(item: &T) -> usize {
    postcard::experimental::serialized_size(item).unwrap_or(usize::MAX)
}

/// Decodes a frame, refusing one over [`MAX_FRAME`] bytes, with no item or more than
/// [`MAX_PER_FRAME`] (checked before anything is allocated), or with bytes after its
/// end. Never panics, whatever `bytes` hold.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, FrameError> {
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_FRAME,
        });
    }
    // The sequence's length comes first, as a varint (the encoding of a u64).
    let (count, _) = postcard::take_from_bytes::<u64>(bytes).map_err(|e| FrameError::Malformed(e.to_string()))?;
    check_count(count)?;
    let (items, rest) = postcard::take_from_bytes::<Vec<T>>(bytes).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!("{} bytes after the frame", rest.len())));
    }
    Ok(items)
}

fn check_count(count: u64) -> Result<(), FrameError> {
    if count == 0 {
        return Err(FrameError::Empty);
    }
    if count > MAX_PER_FRAME as u64 {
        return Err(FrameError::TooMany {
            count,
            limit: MAX_PER_FRAME,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> impl Strategy<Value = StreamRequest> {
        (any::<u64>(), "[a-z_]{0,20}", ".{0,64}").prop_map(|(id, method, params)| StreamRequest { id, method, params })
    }

    fn response() -> impl Strategy<Value = StreamResponse> {
        let outcome = prop_oneof![
            ".{0,64}".prop_map(StreamOutcome::Ok),
            (any::<i64>(), ".{0,32}", proptest::option::of(".{0,32}"))
                .prop_map(|(code, message, data)| StreamOutcome::Err { code, message, data }),
        ];
        (any::<u64>(), outcome).prop_map(|(id, outcome)| StreamResponse { id, outcome })
    }

    proptest! {
        #[test]
        fn requests_round_trip(frame in proptest::collection::vec(request(), 1..=MAX_PER_FRAME)) {
            let bytes = encode(&frame).unwrap();
            prop_assert_eq!(decode::<StreamRequest>(&bytes).unwrap(), frame);
        }

        #[test]
        fn responses_round_trip(frame in proptest::collection::vec(response(), 1..=64)) {
            let bytes = encode(&frame).unwrap();
            let sizes: usize = frame.iter().map(encoded_len).sum();
            prop_assert!(sizes < bytes.len() && bytes.len() <= sizes + 10);
            prop_assert_eq!(decode::<StreamResponse>(&bytes).unwrap(), frame);
        }

        #[test]
        fn garbage_is_refused_or_decoded_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<StreamRequest>(&bytes);
            let _ = decode::<StreamResponse>(&bytes);
        }

        #[test]
        fn a_cut_or_extended_frame_is_refused(frame in proptest::collection::vec(request(), 1..8), cut in 1usize..16, extra in any::<u8>()) {
            let bytes = encode(&frame).unwrap();
            let cut = cut.min(bytes.len());
            prop_assert!(decode::<StreamRequest>(&bytes[..bytes.len() - cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(extra);
            prop_assert!(matches!(decode::<StreamRequest>(&longer), Err(FrameError::Malformed(_))));
        }
    }

    #[test]
    fn limits_are_refused_before_decoding() {
        assert_eq!(
            decode::<StreamRequest>(&vec![0u8; MAX_FRAME + 1]),
            Err(FrameError::TooLarge {
                bytes: MAX_FRAME + 1,
                limit: MAX_FRAME
            })
        );
        // A count of u64::MAX, then nothing: refused on the count, nothing allocated.
        let huge = postcard::to_stdvec(&u64::MAX).unwrap();
        assert_eq!(
            decode::<StreamRequest>(&huge),
            Err(FrameError::TooMany {
                count: u64::MAX,
                limit: MAX_PER_FRAME
            })
        );
        assert_eq!(decode::<StreamRequest>(&[0]), Err(FrameError::Empty));
        assert_eq!(
            decode::<StreamRequest>(&[]).map_err(|e| matches!(e, FrameError::Malformed(_))),
            Err(true)
        );
        let one = StreamRequest {
            id: 1,
            method: "kv_get".into(),
            params: "{}".into(),
        };
        let too_many = vec![one.clone(); MAX_PER_FRAME + 1];
        assert!(matches!(encode(&too_many), Err(FrameError::TooMany { .. })));
        assert_eq!(encode::<StreamRequest>(&[]), Err(FrameError::Empty));
        let big = StreamRequest {
            params: "x".repeat(MAX_FRAME),
            ..one
        };
        assert!(matches!(encode(&[big]), Err(FrameError::TooLarge { .. })));
        // A string whose length claims more than the frame holds.
        let mut lying = encode(&[StreamRequest {
            id: 1,
            method: "m".into(),
            params: String::new(),
        }])
        .unwrap();
        let n = lying.len();
        lying[n - 1] = 0x7f;
        assert!(matches!(decode::<StreamRequest>(&lying), Err(FrameError::Malformed(_))));
    }
}
