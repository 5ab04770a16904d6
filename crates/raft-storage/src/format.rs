//! The bytes on disk: the header every file starts with, the checksummed record
//! framing, and the entry encoding. Pure functions over byte slices; the layout is
//! documented in `docs/storage.md`, and the golden tests below pin it.
//!
//! ```text
//! file header (24 bytes): magic [8] | version u32 LE | base u64 LE | crc32(bytes 0..20) u32 LE
//! record (12 + len bytes): len u32 LE | crc32(len) u32 LE | crc32(payload) u32 LE | payload [len]
//! ```
//!
//! The length has a checksum of its own, so a damaged length is never trusted to
//! decide where the next record starts (or that a record runs past the end of the file,
//! which would look like a torn write).

use raft_core::Entry;

use crate::error::Corruption;

/// The format this build writes, and the newest it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The snapshot file format version this build writes (its layout is in
/// `snapshot_file`), and the newest it reads.
pub(crate) const SNAPSHOT_FORMAT_VERSION: u32 = 2;
/// Length of the file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;
/// Length of a record's header.
pub(crate) const RECORD_HEADER_LEN: usize = 12;
/// The largest record payload (1 GiB), which bounds every allocation driven by disk data.
pub(crate) const MAX_RECORD_LEN: u32 = 1 << 30;
/// The unit a disk writes atomically (or not at all), for torn-write detection.
pub(crate) const SECTOR: u64 = 512;

/// Which kind of file a header opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A log segment; the header's base is the first index it holds.
    Segment,
    /// The state file (hard state and snapshot metadata); base 0.
    State,
    /// A snapshot file; base is the snapshot's index.
    Snapshot,
    /// A segment of a [`crate::MultiLog`]; base is its sequence number.
    MultiSegment,
}

impl FileKind {
    fn magic(self) -> [u8; 8] {
        match self {
            FileKind::Segment => *b"ERAFTLOG",
            FileKind::State => *b"ERAFTSTA",
            FileKind::Snapshot => *b"ERAFTSNP",
            FileKind::MultiSegment => *b"ERAFTMLG",
        }
    }

    /// The newest format version of this kind this build reads (and writes).
    pub(crate) fn newest_version(self) -> u32 {
        match self {
            FileKind::Snapshot => SNAPSHOT_FORMAT_VERSION,
            FileKind::Segment | FileKind::State | FileKind::MultiSegment => FORMAT_VERSION,
        }
    }
}

/// Why a file header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Fewer bytes than a header.
    Short,
    /// Every byte present is zero (space the file system allocated but never wrote).
    Zero,
    /// Not this kind of file.
    BadMagic,
    /// A format version newer than this build.
    Newer(u32),
    /// The checksum does not match (or the version is 0).
    Checksum,
}

/// Encodes a file header.
pub(crate) fn encode_file_header(kind: FileKind, base: u64) -> [u8; FILE_HEADER_LEN] {
    encode_file_header_version(kind, FORMAT_VERSION, base)
}

/// A file header of an explicit format version.
pub(crate) fn encode_file_header_version(kind: FileKind, version: u32, base: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..8].copy_from_slice(&kind.magic());
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[12..20].copy_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header (the first bytes of a file, up to its whole length) and
/// returns its base. The version is checked before the checksum, so a file of a
/// newer format is reported as such even if its header layout changed.
pub(crate) fn decode_file_header(bytes: &[u8], kind: FileKind) -> Result<u64, HeaderProblem> {
    let head = &bytes[..bytes.len().min(FILE_HEADER_LEN)];
    if head.iter().all(|&b| b == 0) {
        return Err(if head.len() < FILE_HEADER_LEN {
            HeaderProblem::Short
        } else {
            HeaderProblem::Zero
        });
    }
    if head.len() < 12 {
        return Err(if kind.magic().starts_with(head) || head.starts_with(&kind.magic()) {
            HeaderProblem::Short
        } else {
            HeaderProblem::BadMagic
        });
    }
    if head[0..8] != kind.magic() {
        return Err(HeaderProblem::BadMagic);
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version > kind.newest_version() {
        return Err(HeaderProblem::Newer(version));
    }
    if head.len() < FILE_HEADER_LEN {
        return Err(HeaderProblem::Short);
    }
    let crc = u32::from_le_bytes([head[20], head[21], head[22], head[23]]);
    if version == 0 || crc != crc32fast::hash(&head[0..20]) {
        return Err(HeaderProblem::Checksum);
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&head[12..20]);
    Ok(u64::from_le_bytes(base))
}

/// Appends one record holding `payload` to `out`.
pub(crate) fn push_record(out: &mut Vec<u8>, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    out.extend_from_slice(payload);
    seal_record(out, start);
}

/// Fills in the header of the record whose header starts at `out[start]` and whose
/// payload runs to the end of `out`.
fn seal_record(out: &mut [u8], start: usize) {
    let len = (out.len() - start - RECORD_HEADER_LEN) as u32;
    let len_bytes = len.to_le_bytes();
    let pcrc = crc32fast::hash(&out[start + RECORD_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc32fast::hash(&len_bytes).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&pcrc.to_le_bytes());
}

/// Checks a record header; returns the payload length and the payload's checksum.
pub(crate) fn decode_record_header(h: &[u8]) -> Result<(u32, u32), Corruption> {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (len, lcrc, pcrc) = (word(0), word(4), word(8));
    if lcrc != crc32fast::hash(&len.to_le_bytes()) {
        return Err(Corruption::RecordHeaderChecksum);
    }
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(Corruption::RecordLength(len));
    }
    Ok((len, pcrc))
}

/// Whether `payload` matches the checksum from its header.
pub(crate) fn payload_ok(payload: &[u8], pcrc: u32) -> bool {
    crc32fast::hash(payload) == pcrc
}

/// Checks one whole record read back from disk (it was valid when written or scanned,
/// so a problem now is damage since) and returns its payload.
pub(crate) fn check_record(rec: &[u8]) -> Result<&[u8], Corruption> {
    if rec.len() < RECORD_HEADER_LEN {
        return Err(Corruption::Truncated);
    }
    let (len, pcrc) = decode_record_header(&rec[..RECORD_HEADER_LEN])?;
    let payload = &rec[RECORD_HEADER_LEN..];
    if payload.len() != len as usize {
        return Err(Corruption::RecordLength(len));
    }
    if !payload_ok(payload, pcrc) {
        return Err(Corruption::PayloadChecksum);
    }
    Ok(payload)
}

/// Whether `bytes` (file content starting at a sector boundary) contains a sector, or
/// a final partial sector, of zeros only: the mark of a write the disk never made.
pub(crate) fn has_zero_sector(bytes: &[u8]) -> bool {
    bytes.chunks(SECTOR as usize).any(|s| s.iter().all(|&b| b == 0))
}

/// Appends one record holding `entry` to `out`.
///
/// # Errors
/// The encoded size if it is over [`MAX_RECORD_LEN`] (`out` is left as it was).
pub(crate) fn push_entry_record(out: &mut Vec<u8>, entry: &Entry) -> Result<(), u64> {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    if postcard::to_io(entry, &mut *out).is_err() {
        // Writing to a Vec cannot fail; an entry postcard cannot encode would be a bug.
        out.truncate(start);
        return Err(u64::MAX);
    }
    let len = (out.len() - start - RECORD_HEADER_LEN) as u64;
    if len > u64::from(MAX_RECORD_LEN) {
        out.truncate(start);
        return Err(len);
    }
    seal_record(out, start);
    Ok(())
}

/// Decodes an entry from a record payload; `None` if it does not decode exactly.
pub(crate) fn decode_entry(payload: &[u8]) -> Option<Entry> {
    match postcard::take_from_bytes::<Entry>(payload) {
        Ok((entry, [])) => Some(entry),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use raft_core::{EntryPayload, Membership};

    use super::*;

    /// The layout is a promise to every existing data directory: if this test fails,
    /// the format changed (perhaps through a serde change in raft-core's `Entry`), and
    /// `FORMAT_VERSION` must be bumped with a migration.
    #[test]
    fn golden_bytes_of_header_and_entry_record() {
        let h = encode_file_header(FileKind::Segment, 7);
        assert_eq!(&h[..8], b"ERAFTLOG");
        assert_eq!(&h[8..20], &[1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_file_header(&h, FileKind::Segment), Ok(7));
        assert_eq!(decode_file_header(&h, FileKind::State), Err(HeaderProblem::BadMagic));

        let mut out = Vec::new();
        let entry = Entry {
            term: 3,
            index: 300,
            payload: EntryPayload::Command(Bytes::from_static(b"hi")),
        };
        push_entry_record(&mut out, &entry).unwrap();
        // term 3, index 300 (varint ac 02), variant 1 (Command), len 2, "hi"
        assert_eq!(&out[RECORD_HEADER_LEN..], &[3, 0xac, 0x02, 1, 2, b'h', b'i']);
        assert_eq!(&out[..4], &[7, 0, 0, 0]);
        assert_eq!(decode_record_header(&out[..12]).map(|r| r.0), Ok(7));
        assert_eq!(decode_entry(&out[12..]), Some(entry));

        let conf = Entry {
            term: 1,
            index: 1,
            payload: EntryPayload::Membership(Membership::with_voters(["a"])),
        };
        out.clear();
        push_entry_record(&mut out, &conf).unwrap();
        // variant 2 (Membership): voters {"a"}, outgoing {}, learners {}
        assert_eq!(&out[RECORD_HEADER_LEN..], &[1, 1, 2, 1, 1, b'a', 0, 0]);
    }

    #[test]
    fn damaged_length_is_caught_by_its_own_checksum() {
        let mut out = Vec::new();
        push_record(&mut out, b"payload");
        for bit in 0..32 {
            let mut h = out[..12].to_vec();
            h[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode_record_header(&h), Err(Corruption::RecordHeaderChecksum));
        }
    }

    #[test]
    fn newer_version_is_reported_before_the_checksum() {
        let mut h = encode_file_header(FileKind::State, 0);
        h[8] = 2;
        assert_eq!(decode_file_header(&h, FileKind::State), Err(HeaderProblem::Newer(2)));
        assert_eq!(decode_file_header(&[0; 10], FileKind::State), Err(HeaderProblem::Short));
        assert_eq!(decode_file_header(&[0; 24], FileKind::State), Err(HeaderProblem::Zero));
        assert_eq!(decode_file_header(&h[..5], FileKind::State), Err(HeaderProblem::Short));
        assert_eq!(
            decode_file_header(b"hello world!", FileKind::State),
            Err(HeaderProblem::BadMagic)
        );
    }

    #[test]
    fn zero_sectors() {
        let mut b = vec![1u8; 1500];
        assert!(!has_zero_sector(&b));
        b[512..1024].fill(0);
        assert!(has_zero_sector(&b));
        let mut c = vec![1u8; 1030];
        c[1024..].fill(0);
        assert!(has_zero_sector(&c));
    }
}
