//! Backups and disaster recovery on a data directory.
//!
//! - [`write_backup`] writes a snapshot (what it covers and its data) as one
//!   self-checking file; [`read_backup`] reads it back, checking it as it streams.
//! - [`restore_backup`] seeds an empty data directory from a backup for a new
//!   cluster: its state machine starts from the backup, under a new membership.
//! - [`force_single_voter`] is the last resort when a majority is lost for good: it
//!   makes one surviving node the only voter of its own log, keeping every entry it
//!   has (and committing them, whether or not the old cluster had). Entries it never
//!   received are lost; the other old members must not come back with their data.
//!
//! A backup file is `ERAFTBK1 | meta length (u32 LE) | meta (postcard) | data length
//! (u64 LE) | data | CRC-32 of meta and data (u32 LE)`.
//!
//! ```
//! use raft_core::{Membership, SnapshotMeta};
//! use raft_storage::backup::{read_backup, write_backup};
//! use std::io::Read;
//!
//! let meta = SnapshotMeta { index: 7, term: 2, membership: Membership::with_voters(["a"]) };
//! let mut file = Vec::new();
//! write_backup(&meta, 5, &mut &b"state"[..], &mut file).unwrap();
//! let (read, mut data) = read_backup(&file[..]).unwrap();
//! let mut state = Vec::new();
//! data.read_to_end(&mut state).unwrap();
//! assert_eq!((read, state), (meta, b"state".to_vec()));
//! ```

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use raft_core::{
    Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, SnapshotMeta, Storage, Term, MAX_SNAPSHOT_INDEX,
    MAX_TERM,
};

use crate::{FileStorage, LogStore, Options};

/// The first bytes of a backup file (format 1).
pub const BACKUP_MAGIC: &[u8; 8] = b"ERAFTBK1";

/// The largest encoded snapshot description a backup may carry.
const MAX_META_BYTES: u32 = 1 << 20;

/// What can go wrong with a backup or a recovery.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing the backup failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, and on which file.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The backup is not one: wrong magic, a length out of bounds, a description
    /// that does not decode or makes no sense.
    #[error("not a valid easyraft backup at offset {offset}: {reason}")]
    Invalid {
        /// Where in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The data directory to restore into already holds a log, a snapshot or a state.
    #[error("{dir} is not empty (it holds a log, a snapshot or a term); restore into a new data directory")]
    NotEmpty {
        /// The data directory.
        dir: PathBuf,
    },
    /// The data directory has nothing to recover.
    #[error("{dir} holds no log and no snapshot: nothing to recover")]
    NothingToRecover {
        /// The data directory.
        dir: PathBuf,
    },
    /// The storage refused.
    #[error(transparent)]
    Storage(#[from] crate::Error),
    /// The storage refused (through the `Storage` trait).
    #[error("{0}")]
    StorageOp(#[from] raft_core::StorageError),
}

fn invalid(offset: u64, reason: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        offset,
        reason: reason.into(),
    }
}

/// Checks a snapshot description from a backup: the bounds raft-core holds peers to.
fn check_meta(meta: &SnapshotMeta, offset: u64) -> Result<(), BackupError> {
    if meta.index == 0 || meta.index > MAX_SNAPSHOT_INDEX {
        return Err(invalid(
            offset,
            format!("snapshot index {} is not in 1..={MAX_SNAPSHOT_INDEX}", meta.index),
        ));
    }
    if meta.term == 0 || meta.term > MAX_TERM {
        return Err(invalid(
            offset,
            format!("snapshot term {} is not in 1..={MAX_TERM}", meta.term),
        ));
    }
    if meta.membership.voters.is_empty() {
        return Err(invalid(offset, "the snapshot's membership has no voter"));
    }
    Ok(())
}

/// Writes a backup of a snapshot: `meta` and `len` bytes of `data`. Returns the bytes
/// written. The caller flushes and syncs `out`.
///
/// # Errors
/// [`BackupError::Io`] on a failed read or write, or when `data` holds fewer than
/// `len` bytes; [`BackupError::Invalid`] for a description out of bounds.
pub fn write_backup(
    meta: &SnapshotMeta,
    len: u64,
    data: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<u64, BackupError> {
    check_meta(meta, 0)?;
    let io = |what: &str| {
        let what = what.to_string();
        move |source| BackupError::Io { what, source }
    };
    let encoded = postcard::to_allocvec(meta).map_err(|e| invalid(0, format!("encoding the description: {e}")))?;
    let meta_len = u32::try_from(encoded.len()).ok().filter(|&n| n <= MAX_META_BYTES);
    let meta_len = meta_len.ok_or_else(|| invalid(0, format!("a description of {} bytes", encoded.len())))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&encoded);
    out.write_all(BACKUP_MAGIC).map_err(io("writing the backup"))?;
    out.write_all(&meta_len.to_le_bytes())
        .map_err(io("writing the backup"))?;
    out.write_all(&encoded).map_err(io("writing the backup"))?;
    out.write_all(&len.to_le_bytes()).map_err(io("writing the backup"))?;
    let mut left = len;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = data.read(&mut buf[..want]).map_err(io("reading the snapshot"))?;
        if n == 0 {
            return Err(BackupError::Io {
                what: "reading the snapshot".into(),
                source: io::Error::new(io::ErrorKind::UnexpectedEof, format!("{left} of {len} bytes missing")),
            });
        }
        crc.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io("writing the backup"))?;
        left -= n as u64;
    }
    out.write_all(&crc.finalize().to_le_bytes())
        .map_err(io("writing the backup"))?;
    Ok(8 + 4 + u64::from(meta_len) + 8 + len + 4)
}

/// The data of a backup, as a stream: it ends after the data's length and fails (an
/// `InvalidData` error) if the CRC at the end does not match or bytes follow it.
#[derive(Debug)]
pub struct BackupData<R> {
    input: R,
    left: u64,
    /// Where the data starts in the file (for errors).
    start: u64,
    len: u64,
    crc: crc32fast::Hasher,
    checked: bool,
}

impl<R> BackupData<R> {
    /// The length of the data in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<R: Read> Read for BackupData<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if !self.checked {
                let mut tail = [0u8; 4];
                self.input.read_exact(&mut tail)?;
                let want = u32::from_le_bytes(tail);
                let got = self.crc.clone().finalize();
                let end = self.start.saturating_add(self.len);
                if want != got {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("backup CRC mismatch at offset {end}: stored {want:08x}, computed {got:08x}"),
                    ));
                }
                let mut more = [0u8; 1];
                if self.input.read(&mut more)? != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bytes after the end of the backup at offset {}", end.saturating_add(4)),
                    ));
                }
                self.checked = true;
            }
            return Ok(0);
        }
        let want = usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self.input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the backup ends {} bytes short of its data", self.left),
            ));
        }
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads a backup's header and description; the data follows as a checked stream.
///
/// # Errors
/// [`BackupError::Invalid`] for anything that is not a backup this version wrote;
/// [`BackupError::Io`] on a failed read.
pub fn read_backup<R: Read>(mut input: R) -> Result<(SnapshotMeta, BackupData<R>), BackupError> {
    let eof = |offset: u64| {
        move |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => invalid(offset, "the file ends early"),
            _ => BackupError::Io {
                what: "reading the backup".into(),
                source: e,
            },
        }
    };
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(eof(0))?;
    if &magic != BACKUP_MAGIC {
        return Err(invalid(0, "wrong magic (not an easyraft backup, or a newer format)"));
    }
    let mut n4 = [0u8; 4];
    input.read_exact(&mut n4).map_err(eof(8))?;
    let meta_len = u32::from_le_bytes(n4);
    if meta_len == 0 || meta_len > MAX_META_BYTES {
        return Err(invalid(8, format!("a description of {meta_len} bytes")));
    }
    let mut encoded = vec![0u8; meta_len as usize];
    input.read_exact(&mut encoded).map_err(eof(12))?;
    let meta: SnapshotMeta =
        postcard::from_bytes(&encoded).map_err(|e| invalid(12, format!("the description does not decode: {e}")))?;
    check_meta(&meta, 12)?;
    let at = 12 + u64::from(meta_len);
    let mut n8 = [0u8; 8];
    input.read_exact(&mut n8).map_err(eof(at))?;
    let len = u64::from_le_bytes(n8);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&encoded);
    Ok((
        meta,
        BackupData {
            input,
            left: len,
            start: at + 8,
            len,
            crc,
            checked: false,
        },
    ))
}

fn is_empty(s: &FileStorage) -> Result<bool, BackupError> {
    let hs = s.hard_state();
    let snap = s.snapshot_info()?;
    Ok(hs.term == 0 && hs.vote.is_none() && s.last_index()? == 0 && snap.meta.index == 0)
}

/// Seeds the empty data directory `dir` from the backup file `backup`, for a new
/// cluster whose founding members are `membership` (every founding member is seeded
/// the same way). The state machine will start from the backup's state; the log
/// starts after it. Returns what the backup covers (with the new membership).
///
/// # Errors
/// [`BackupError::NotEmpty`] if `dir` holds anything; [`BackupError::Invalid`] or an
/// I/O error for a damaged backup (nothing is installed then); storage errors.
pub fn restore_backup(
    dir: &Path,
    options: Options,
    backup: &Path,
    membership: Membership,
) -> Result<SnapshotMeta, BackupError> {
    if membership.voters.is_empty() {
        return Err(invalid(0, "the new membership has no voter"));
    }
    let file = std::fs::File::open(backup).map_err(|source| BackupError::Io {
        what: format!("opening {}", backup.display()),
        source,
    })?;
    let (meta, mut data) = read_backup(io::BufReader::new(file))?;
    let mut storage = FileStorage::open(dir, options)?;
    if !is_empty(&storage)? {
        return Err(BackupError::NotEmpty { dir: dir.to_path_buf() });
    }
    let mut sink = storage.snapshot_sink()?;
    io::copy(&mut data, &mut sink).map_err(|source| BackupError::Io {
        what: format!("reading {}", backup.display()),
        source,
    })?;
    let staged = sink.finish()?;
    let meta = SnapshotMeta { membership, ..meta };
    storage.install_snapshot(&meta, staged)?;
    storage.set_hard_state(&HardState {
        term: meta.term,
        vote: None,
        commit: meta.index,
    })?;
    Ok(meta)
}

/// What [`force_single_voter`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForcedRecovery {
    /// The last entry the node had (all kept, and now committed).
    pub kept_through: LogIndex,
    /// The commit index the node had persisted before (entries after it may never
    /// have been committed by the old cluster).
    pub previously_committed: LogIndex,
    /// The index of the new membership entry (`id` the only voter).
    pub membership_index: LogIndex,
    /// Its term.
    pub term: Term,
}

/// Makes `id` the only voter of the log in `dir`, keeping every entry it holds: a new
/// membership entry is appended after the last one in a new term, and everything up
/// to it is marked committed. Started on that directory, the node elects itself and
/// serves its state; add new members to it afterwards.
///
/// **Unsafe by design**, like etcd's `--force-new-cluster`: entries the old cluster
/// committed but this node never received are lost, entries it has that were never
/// committed now are, and the old members must never rejoin with their old data.
///
/// # Errors
/// [`BackupError::NothingToRecover`] for an empty directory; storage errors (the
/// directory is locked by a running node, damaged...).
pub fn force_single_voter(dir: &Path, options: Options, id: &NodeId) -> Result<ForcedRecovery, BackupError> {
    let mut storage = FileStorage::open(dir, options)?;
    let last = storage.last_index()?;
    let snap = storage.snapshot_info()?;
    if last == 0 && snap.meta.index == 0 {
        return Err(BackupError::NothingToRecover { dir: dir.to_path_buf() });
    }
    let hs = storage.hard_state().clone();
    let last_term = storage.term(last)?;
    let term = hs
        .term
        .max(last_term)
        .checked_add(1)
        .filter(|&t| t <= MAX_TERM)
        .ok_or_else(|| invalid(0, format!("term {} leaves no room for a new one", hs.term)))?;
    let index = last
        .checked_add(1)
        .ok_or_else(|| invalid(0, format!("index {last} leaves no room for a new entry")))?;
    storage.append(&[Entry {
        term,
        index,
        payload: EntryPayload::Membership(Membership::with_voters([id.clone()])),
    }])?;
    storage.set_hard_state(&HardState {
        term,
        vote: Some(id.clone()),
        commit: index,
    })?;
    Ok(ForcedRecovery {
        kept_through: last,
        previously_committed: hs.commit,
        membership_index: index,
        term,
    })
}
