//! How byte strings (commands, snapshot chunks, read contexts) are serialized.
//!
//! Binary formats such as postcard get raw bytes (`serialize_bytes`), exactly what
//! `Bytes`' own serde impl writes, so the postcard wire and disk formats do not
//! depend on this module. Human-readable formats such as JSON get one base64 string
//! (standard alphabet, padded): a 4 KiB command is ~5.5 KiB of JSON instead of an
//! array of up to 4,096 numbers (~15 KiB). When reading JSON an array of numbers
//! 0–255 is accepted too, so hand-written clients may use either form.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&STANDARD.encode(b))
    } else {
        s.serialize_bytes(b)
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    if d.is_human_readable() {
        d.deserialize_any(BytesVisitor)
    } else {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        STANDARD
            .decode(v)
            .map(Bytes::from)
            .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Entry, EntryPayload};
    use bytes::Bytes;

    fn entry(data: &[u8]) -> Entry {
        Entry {
            term: 2,
            index: 7,
            payload: EntryPayload::Command(Bytes::copy_from_slice(data)),
        }
    }

    #[test]
    fn json_carries_base64_and_reads_both_forms() {
        let e = entry(b"hello\x00\xff");
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""Command":"aGVsbG8A/w==""#), "{json}");
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), e);
        let numbers = r#"{"term":2,"index":7,"payload":{"Command":[104,101,108,108,111,0,255]}}"#;
        assert_eq!(serde_json::from_str::<Entry>(numbers).unwrap(), e);
    }

    #[test]
    fn bad_json_bytes_are_errors() {
        for bad in [r#""not base64!""#, "[1,256]", "[-1]", "7", r#"{"a":1}"#] {
            let text = format!(r#"{{"term":2,"index":7,"payload":{{"Command":{bad}}}}}"#);
            assert!(serde_json::from_str::<Entry>(&text).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn postcard_is_unchanged_raw_bytes() {
        // The same bytes `Bytes`' own impl writes: a varint length, then the bytes.
        let data = b"abc";
        let ours = postcard::to_allocvec(&entry(data)).unwrap();
        let theirs = postcard::to_allocvec(&(2u64, 7u64, 1u32, Bytes::from_static(data))).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(postcard::from_bytes::<Entry>(&ours).unwrap(), entry(data));
    }
}
