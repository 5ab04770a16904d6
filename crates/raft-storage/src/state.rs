//! The state file: the hard state plus the snapshot's metadata (which holds the
//! membership), written whole and atomically (temp file, fsync, rename, fsync the
//! directory).

use std::path::{Path, PathBuf};

use raft_core::{HardState, LogIndex, Membership, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

use crate::error::{Corruption, Error};
use crate::format::{encode_file_header, push_record, FileKind, FILE_HEADER_LEN, MAX_RECORD_LEN, RECORD_HEADER_LEN};
use crate::names::{STATE_FILE, TMP_SUFFIX};
use crate::vfs::{OpenMode, Vfs};
use crate::whole_file::{check_header, read_record};

/// What the state file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateRecord {
    /// Term, vote and commit.
    pub(crate) hard_state: HardState,
    /// The latest snapshot's index, term and membership (index 0: the bootstrap membership).
    pub(crate) snapshot: SnapshotMeta,
    /// Whether a snapshot file exists for `snapshot` (not for a never-snapshotted log).
    pub(crate) snapshot_file: bool,
}

impl StateRecord {
    /// The state of a brand-new directory.
    pub(crate) fn fresh(membership: Membership) -> Self {
        StateRecord {
            snapshot: SnapshotMeta {
                membership,
                ..SnapshotMeta::default()
            },
            ..StateRecord::default()
        }
    }
}

/// Whether a snapshot at `index` of `term` is one no storage writes: an index beyond
/// raft-core's [`raft_core::MAX_SNAPSHOT_INDEX`] (the farthest it lets a snapshot move
/// a log), or only one of index and term 0 (index 0, term 0 is the empty log).
/// `save_snapshot` refuses what recovery refuses.
pub(crate) fn is_impossible_snapshot(index: LogIndex, term: Term) -> bool {
    index > raft_core::MAX_SNAPSHOT_INDEX || (index == 0) != (term == 0)
}

/// Writes the state file atomically.
pub(crate) fn write_state(vfs: &dyn Vfs, dir: &Path, state: &StateRecord, sync: bool) -> Result<(), Error> {
    let mut bytes = encode_file_header(FileKind::State, 0).to_vec();
    let payload =
        postcard::to_stdvec(state).map_err(|e| Error::io("encode", dir.join(STATE_FILE))(std::io::Error::other(e)))?;
    push_record(&mut bytes, &payload);
    write_atomically(vfs, dir, STATE_FILE, &[&bytes], sync)
}

/// Reads the state file; `None` if there is none.
pub(crate) fn read_state(vfs: &dyn Vfs, dir: &Path) -> Result<Option<StateRecord>, Error> {
    let path = dir.join(STATE_FILE);
    let file = match vfs.open(&path, OpenMode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path)(e)),
    };
    let len = file.size().map_err(Error::io("stat", &path))?;
    let max = (FILE_HEADER_LEN + RECORD_HEADER_LEN) as u64 + u64::from(MAX_RECORD_LEN);
    let mut bytes = vec![0u8; len.min(max) as usize];
    file.read_exact_at(&mut bytes, 0).map_err(Error::io("read", &path))?;
    check_header(&bytes, FileKind::State, &path)?;
    let (payload, end) = read_record(&bytes, FILE_HEADER_LEN, &path)?;
    if end as u64 != len {
        return Err(Error::Corrupt {
            path,
            offset: end as u64,
            kind: Corruption::TrailingBytes,
        });
    }
    let state = postcard::from_bytes(payload).map_err(|_| Error::Corrupt {
        path,
        offset: FILE_HEADER_LEN as u64,
        kind: Corruption::Undecodable,
    })?;
    Ok(Some(state))
}

/// Temp file, write, fsync, rename over `name`, fsync the directory.
fn write_atomically(vfs: &dyn Vfs, dir: &Path, name: &str, parts: &[&[u8]], sync: bool) -> Result<(), Error> {
    let tmp: PathBuf = dir.join(format!("{name}{TMP_SUFFIX}"));
    let path = dir.join(name);
    let file = vfs
        .open(&tmp, OpenMode::CreateTruncate)
        .map_err(Error::io("create", &tmp))?;
    let mut offset = 0u64;
    for part in parts {
        file.write_all_at(part, offset).map_err(Error::io("write", &tmp))?;
        offset += part.len() as u64;
    }
    if sync {
        file.sync_data().map_err(Error::io("fdatasync", &tmp))?;
    }
    drop(file);
    vfs.rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
    if sync {
        vfs.sync_dir(dir).map_err(Error::io("fsync", dir))?;
    }
    Ok(())
}
