//! The records of a multi-group log and the names of its files. Every record is framed
//! as in `format` (length, its CRC, the payload's CRC); the payload is a postcard
//! [`Record`]. The layout is in `docs/storage.md`; the golden test below pins it.

use raft_core::{Entry, HardState, LogIndex, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

use crate::format::push_record;
use crate::names::{parse_snapshot_name, snapshot_name};

/// What a group is, apart from its entries: written when the group is created, when a
/// snapshot becomes its current one, and for every group in each checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupMeta {
    /// The group.
    pub(crate) group: u64,
    /// Term, vote and commit.
    pub(crate) hard_state: HardState,
    /// The current snapshot (index 0: the bootstrap membership).
    pub(crate) snapshot: SnapshotMeta,
    /// Whether a snapshot file exists for `snapshot`.
    pub(crate) snapshot_file: bool,
    /// The group's last index when the record was written: replay drops the entries
    /// after it (records that cut them may be in segments deleted since).
    pub(crate) last_index: LogIndex,
}

/// One record of the log, as written (borrowing).
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    /// An entry of a group; it replaces the group's entries from its index on.
    Entry { group: u64, entry: &'a Entry },
    /// A group's new hard state.
    HardState { group: u64, hard_state: &'a HardState },
    /// A group's whole state (creation, or a new snapshot).
    Group(&'a GroupMeta),
    /// A group is gone, with everything it wrote.
    Remove { group: u64 },
    /// The first record of every segment: every live group's state and the older
    /// segments that still hold live records.
    Checkpoint {
        segments: &'a [u64],
        groups: &'a [GroupMeta],
    },
    /// Segments about to be deleted (none of their records is live).
    Dropped { segments: &'a [u64] },
}

/// One record of the log, as read.
#[derive(Debug, Deserialize)]
pub(crate) enum Record {
    /// See [`RecordRef::Entry`].
    Entry { group: u64, entry: Entry },
    /// See [`RecordRef::HardState`].
    HardState { group: u64, hard_state: HardState },
    /// See [`RecordRef::Group`].
    Group(GroupMeta),
    /// See [`RecordRef::Remove`].
    Remove { group: u64 },
    /// See [`RecordRef::Checkpoint`].
    Checkpoint { segments: Vec<u64>, groups: Vec<GroupMeta> },
    /// See [`RecordRef::Dropped`].
    Dropped { segments: Vec<u64> },
}

/// The postcard variant tag of [`Record::Entry`].
const ENTRY_TAG: u32 = 0;

/// Appends the framed record to `out`.
pub(crate) fn push(out: &mut Vec<u8>, record: &RecordRef<'_>) -> Result<(), postcard::Error> {
    let payload = postcard::to_stdvec(record)?;
    push_record(out, &payload);
    Ok(())
}

/// The group, term and index of an entry record, without decoding its payload (the
/// checksum vouches for the rest); `None` for other records.
pub(crate) fn peek_entry(payload: &[u8]) -> Option<(u64, Term, LogIndex)> {
    let (tag, rest) = postcard::take_from_bytes::<u32>(payload).ok()?;
    if tag != ENTRY_TAG {
        return None;
    }
    postcard::take_from_bytes::<(u64, Term, LogIndex)>(rest)
        .ok()
        .map(|(t, _)| t)
}

/// Decodes a record payload; `None` unless it decodes exactly.
pub(crate) fn decode(payload: &[u8]) -> Option<Record> {
    match postcard::take_from_bytes::<Record>(payload) {
        Ok((record, [])) => Some(record),
        _ => None,
    }
}

const SEGMENT_SUFFIX: &str = ".mlog";

/// The file name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:020}{SEGMENT_SUFFIX}")
}

/// The sequence number a segment name stands for.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The file name of `group`'s snapshot at `index` of `term`.
pub(crate) fn group_snapshot_name(group: u64, index: LogIndex, term: Term) -> String {
    format!("g{group:020}-{}", snapshot_name(index, term))
}

/// The group, index and term a group snapshot file name stands for.
pub(crate) fn parse_group_snapshot_name(name: &str) -> Option<(u64, LogIndex, Term)> {
    let rest = name.strip_prefix('g')?;
    let (digits, snap) = (rest.get(..20)?, rest.get(20..)?.strip_prefix('-')?);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (index, term) = parse_snapshot_name(snap)?;
    Some((digits.parse().ok()?, index, term))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use raft_core::EntryPayload;

    use super::*;
    use crate::format::RECORD_HEADER_LEN;

    /// The layout is a promise to every existing directory: if this fails, the format
    /// changed and the segment format version must be bumped.
    #[test]
    fn golden_bytes_of_records() {
        let entry = Entry {
            term: 3,
            index: 300,
            payload: EntryPayload::Command(Bytes::from_static(b"hi")),
        };
        let mut out = Vec::new();
        push(
            &mut out,
            &RecordRef::Entry {
                group: 7,
                entry: &entry,
            },
        )
        .unwrap();
        // tag 0, group 7, then the entry as in a FileStorage segment
        assert_eq!(&out[RECORD_HEADER_LEN..], &[0, 7, 3, 0xac, 0x02, 1, 2, b'h', b'i']);
        assert_eq!(peek_entry(&out[RECORD_HEADER_LEN..]), Some((7, 3, 300)));
        assert!(matches!(decode(&out[RECORD_HEADER_LEN..]), Some(Record::Entry { group: 7, entry: e }) if e == entry));

        out.clear();
        push(&mut out, &RecordRef::Remove { group: 5 }).unwrap();
        assert_eq!(&out[RECORD_HEADER_LEN..], &[3, 5]);
        assert_eq!(peek_entry(&out[RECORD_HEADER_LEN..]), None);
        out.clear();
        push(&mut out, &RecordRef::Dropped { segments: &[1, 2] }).unwrap();
        assert_eq!(&out[RECORD_HEADER_LEN..], &[5, 2, 1, 2]);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("00000000000000000042.wal"), None);
        let name = group_snapshot_name(9, 40, 2);
        assert_eq!(
            name,
            "g00000000000000000009-snapshot-00000000000000000040-00000000000000000002.snap"
        );
        assert_eq!(parse_group_snapshot_name(&name), Some((9, 40, 2)));
        assert_eq!(
            parse_group_snapshot_name("snapshot-00000000000000000040-00000000000000000002.snap"),
            None
        );
    }
}
