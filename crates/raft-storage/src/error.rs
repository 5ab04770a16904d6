//! The crate's typed errors. Every error about a file names the file, and every error
//! about its content names the byte offset, so an operator can look at the bytes.

use std::fmt;
use std::io;
use std::path::PathBuf;

use raft_core::{LogIndex, StorageError, Term, MAX_INDEX, MAX_SNAPSHOT_INDEX};
use thiserror::Error;

/// What an operator can do about a data directory that cannot be trusted; every error
/// about a damaged or incomplete directory ends with it.
pub const REPAIR_HINT: &str = "this node's data directory cannot be trusted: restore it from a backup, or \
     remove the node from the cluster, delete the directory and add the node back, so that it catches up \
     from the leader with a snapshot (do not just delete it and restart: a node that forgets its vote can \
     vote twice in one term)";

/// Errors of [`crate::FileStorage`] and [`crate::MultiLog`].
///
/// Through the [`raft_core::Storage`] and [`crate::LogStore`] traits they travel as
/// [`StorageError::Other`]; [`Error::from_storage`] gets them back.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"write"`, `"fdatasync"` ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process (or another `FileStorage` in this one) has the directory open.
    #[error("data directory {dir} is already in use ({holder})")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// Who holds the lock, as recorded in its `LOCK` file (e.g. `pid 4242`).
        holder: String,
    },
    /// A file's content is damaged: a checksum does not match, a record is cut short
    /// before the end of the log, or a record decodes to something impossible.
    #[error("{path} at offset {offset}: {kind}; {REPAIR_HINT}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where in the file the damage starts.
        offset: u64,
        /// What is wrong.
        kind: Corruption,
    },
    /// A file in the data directory that this crate did not write.
    #[error("{path}: not an easyraft storage file; is {dir} the right data directory?")]
    ForeignFile {
        /// The data directory.
        dir: PathBuf,
        /// The unexpected file.
        path: PathBuf,
    },
    /// A file written by a newer release of this crate, in a format this one cannot read.
    #[error("{path}: format version {version} is newer than the supported version {supported}; upgrade easyraft")]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        version: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The log has a hole: the segment holding entry `expected` is gone.
    #[error("{path}: missing log segment: expected entry {expected} next, but this segment starts at {found}; {REPAIR_HINT}")]
    MissingSegment {
        /// The segment after the hole.
        path: PathBuf,
        /// The first index the missing data should have held.
        expected: LogIndex,
        /// The first index of `path`.
        found: LogIndex,
    },
    /// Log segments or snapshots exist but the state file (term, vote, membership) does not.
    #[error(
        "{path} is missing but the directory holds a log; refusing to start with a blank term and vote; {REPAIR_HINT}"
    )]
    MissingState {
        /// Where the state file should be.
        path: PathBuf,
    },
    /// The state file names a snapshot whose file is missing.
    #[error("{path} is missing (snapshot at index {index}, term {term}); {REPAIR_HINT}")]
    MissingSnapshot {
        /// Where the snapshot file should be.
        path: PathBuf,
        /// The snapshot's index.
        index: LogIndex,
        /// The snapshot's term.
        term: Term,
    },
    /// The persisted hard state claims a commit index the log does not reach: committed
    /// entries were lost.
    #[error("{path} at offset {offset}: hard state commit index {commit} is beyond the last log entry {last_index} (in {log_path}); {REPAIR_HINT}")]
    HardStateBeyondLog {
        /// The state file.
        path: PathBuf,
        /// Offset of the hard state record in it.
        offset: u64,
        /// The persisted commit index.
        commit: LogIndex,
        /// The last index the log holds.
        last_index: LogIndex,
        /// The last log segment (or the data directory if the log is empty).
        log_path: PathBuf,
    },
    /// An entry too large for one record.
    #[error("entry {index} is {size} bytes encoded, over the limit of {limit} bytes")]
    EntryTooLarge {
        /// The entry's index.
        index: LogIndex,
        /// Its encoded size.
        size: u64,
        /// The largest record this format stores.
        limit: u64,
    },
    /// The entries given to `append` do not have consecutive indexes.
    #[error("entries to append are not consecutive: expected index {expected}, got {found}")]
    NotConsecutive {
        /// The index that should have come next.
        expected: LogIndex,
        /// The index that came.
        found: LogIndex,
    },
    /// An entry to append has an index beyond [`MAX_INDEX`], the length a log may
    /// reach (raft-core refuses such indexes from peers; nothing is written).
    #[error("entry {index} is beyond the log's index limit {limit}")]
    IndexBeyondLimit {
        /// The entry's index.
        index: LogIndex,
        /// [`MAX_INDEX`].
        limit: LogIndex,
    },
    /// An entry to append has a lower term than the entry before it (Raft's terms never
    /// go down along a log; nothing is written).
    #[error("entry {index} has term {term}, lower than the term {previous} before it")]
    TermGoesDown {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The term of the entry (or snapshot) before it.
        previous: Term,
    },
    /// A snapshot to save cannot describe a real one: its index is beyond
    /// [`MAX_SNAPSHOT_INDEX`], or only one of index and term is 0 (nothing is written).
    #[error("snapshot at index {index}, term {term} is impossible: the index must be at most {MAX_SNAPSHOT_INDEX}, and only index 0 has term 0")]
    ImpossibleSnapshot {
        /// The snapshot's index.
        index: LogIndex,
        /// The snapshot's term.
        term: Term,
    },
    /// A [`crate::GroupLog`] of a group that was removed from its [`crate::MultiLog`].
    #[error("{dir}: raft group {group} was removed")]
    GroupRemoved {
        /// The multi-log's directory.
        dir: PathBuf,
        /// The group.
        group: u64,
    },
    /// A [`crate::MultiLog`] segment that its newest checkpoint says holds live records
    /// is gone.
    #[error("{path} is missing: the log's checkpoint says it holds live records; {REPAIR_HINT}")]
    MissingLogFile {
        /// Where the segment should be.
        path: PathBuf,
    },
    /// A group's log in a [`crate::MultiLog`] has a hole: the entries after its snapshot
    /// do not start right after it.
    #[error("{path} at offset {offset}: raft group {group}'s log resumes at entry {found} but should at {expected}; {REPAIR_HINT}")]
    GroupLogHole {
        /// The segment holding the first entry after the hole.
        path: PathBuf,
        /// That entry's record.
        offset: u64,
        /// The group.
        group: u64,
        /// The index its log should resume at (after its snapshot).
        expected: LogIndex,
        /// The first index found.
        found: LogIndex,
    },
    /// The options cannot work.
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
    /// An earlier write or fsync failed, so what is on disk is no longer known; the
    /// storage refuses further writes. Reopen it to recover from what is on disk.
    #[error("{dir}: an earlier write failed; reopen the storage to recover")]
    Poisoned {
        /// The data directory.
        dir: PathBuf,
    },
}

/// What is wrong with a damaged record or file, in [`Error::Corrupt`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The file does not start with the magic bytes of its kind.
    BadMagic,
    /// The file header's checksum does not match.
    HeaderChecksum,
    /// The file is shorter than its header.
    ShortHeader,
    /// A record's length field does not match its checksum.
    RecordHeaderChecksum,
    /// A record's length is zero or over the limit.
    RecordLength(u32),
    /// A record's payload does not match its checksum.
    PayloadChecksum,
    /// A record is cut short by the end of a file that is not the log's tail.
    Truncated,
    /// A record has a valid checksum but does not decode.
    Undecodable,
    /// A record holds an entry at an unexpected index.
    UnexpectedIndex {
        /// The index the position implies.
        expected: LogIndex,
        /// The index in the record.
        found: LogIndex,
    },
    /// A segment's header disagrees with its file name about its first index.
    NameMismatch {
        /// The first index in the name.
        name: LogIndex,
        /// The first index in the header.
        header: LogIndex,
    },
    /// A segment other than the last holds no entry.
    EmptySegment,
    /// Bytes after the last record of a file that must end there.
    TrailingBytes,
    /// The snapshot file does not describe the snapshot the state file names.
    SnapshotMismatch,
    /// A segment's name gives a first index outside `1..=MAX_INDEX` ([`MAX_INDEX`]).
    SegmentIndexOutOfRange {
        /// The first index in the name.
        first: LogIndex,
    },
    /// A record holds an entry beyond [`MAX_INDEX`], the length a log may reach.
    IndexBeyondLimit {
        /// The entry's index.
        index: LogIndex,
    },
    /// A record holds an entry of term 0, a term before any leader.
    ZeroTerm {
        /// The entry's index.
        index: LogIndex,
    },
    /// A record holds an entry of a lower term than the entry (or snapshot) before it.
    TermGoesDown {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The term before it.
        previous: Term,
    },
    /// The state file's snapshot metadata cannot describe a snapshot: an index beyond
    /// [`MAX_SNAPSHOT_INDEX`], or only one of index and term is 0.
    ImpossibleSnapshot {
        /// The snapshot's index.
        index: LogIndex,
        /// The snapshot's term.
        term: Term,
    },
    /// A segment's records run past 4 GiB, beyond any segment this crate writes.
    SegmentTooLong,
    /// A multi-log record names a group that no earlier record created.
    UnknownGroup {
        /// The group.
        group: u64,
    },
    /// A multi-log segment does not start with its checkpoint record.
    MissingCheckpoint,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::BadMagic => f.write_str("not the magic bytes of this kind of file"),
            Corruption::HeaderChecksum => f.write_str("file header checksum mismatch"),
            Corruption::ShortHeader => f.write_str("file shorter than its header"),
            Corruption::RecordHeaderChecksum => f.write_str("record length checksum mismatch"),
            Corruption::RecordLength(n) => write!(f, "impossible record length {n}"),
            Corruption::PayloadChecksum => f.write_str("record payload checksum mismatch"),
            Corruption::Truncated => f.write_str("record cut short before the end of the log"),
            Corruption::Undecodable => f.write_str("record does not decode"),
            Corruption::UnexpectedIndex { expected, found } => {
                write!(f, "record holds entry {found}, expected {expected}")
            }
            Corruption::NameMismatch { name, header } => {
                write!(f, "file name says first index {name}, header says {header}")
            }
            Corruption::EmptySegment => f.write_str("a segment before the last holds no entry"),
            Corruption::TrailingBytes => f.write_str("unexpected bytes after the last record"),
            Corruption::SnapshotMismatch => f.write_str("snapshot file does not match the state file"),
            Corruption::SegmentIndexOutOfRange { first } => {
                write!(f, "segment named after index {first}, outside 1..={MAX_INDEX}")
            }
            Corruption::IndexBeyondLimit { index } => {
                write!(f, "record holds entry {index}, beyond the index limit {MAX_INDEX}")
            }
            Corruption::ZeroTerm { index } => write!(f, "record holds entry {index} of term 0"),
            Corruption::TermGoesDown { index, term, previous } => {
                write!(f, "record holds entry {index} of term {term}, lower than the term {previous} before it")
            }
            Corruption::ImpossibleSnapshot { index, term } => write!(
                f,
                "snapshot at index {index}, term {term}: the index must be at most {MAX_SNAPSHOT_INDEX}, and only index 0 has term 0"
            ),
            Corruption::SegmentTooLong => f.write_str("segment records run past 4 GiB"),
            Corruption::UnknownGroup { group } => write!(f, "record of raft group {group}, which no earlier record created"),
            Corruption::MissingCheckpoint => f.write_str("segment does not start with a checkpoint record"),
        }
    }
}

impl Error {
    /// The [`Error`](enum@Error) inside a [`StorageError::Other`] returned by a [`crate::FileStorage`].
    pub fn from_storage(e: &StorageError) -> Option<&Error> {
        match e {
            StorageError::Other(inner) => inner.downcast_ref::<Error>(),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

impl From<Error> for StorageError {
    fn from(e: Error) -> Self {
        StorageError::other(e)
    }
}
