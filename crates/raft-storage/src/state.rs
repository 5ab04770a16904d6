//! The two files written whole and atomically (temp file, fsync, rename, fsync the
//! directory): the state file (hard state plus the snapshot's metadata, which holds the
//! membership) and the snapshot files.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{HardState, LogIndex, Membership, Snapshot, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

use crate::error::{Corruption, Error};
use crate::format::{
    decode_file_header, decode_record_header, encode_file_header, payload_ok, push_record, FileKind, HeaderProblem,
    FILE_HEADER_LEN, FORMAT_VERSION, MAX_RECORD_LEN, RECORD_HEADER_LEN,
};
use crate::snapshot_file::DataRegion;
use crate::vfs::{OpenMode, Vfs, VfsFile};

/// The state file's name.
pub(crate) const STATE_FILE: &str = "state";
pub(crate) const TMP_SUFFIX: &str = ".tmp";

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

/// The file name of the snapshot at `index` of `term`.
pub(crate) fn snapshot_name(index: LogIndex, term: Term) -> String {
    format!("snapshot-{index:020}-{term:020}.snap")
}

/// The index and term a snapshot file name stands for.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<(LogIndex, Term)> {
    let rest = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    let (index, term) = rest.split_once('-')?;
    let num = |s: &str| {
        (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((num(index)?, num(term)?))
}

/// Whether `name` is a temp file this crate writes (left behind by a crash).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.strip_suffix(TMP_SUFFIX).is_some_and(|n| {
        n == STATE_FILE || parse_snapshot_name(n).is_some() || n.starts_with(crate::snapshot_file::STAGING_PREFIX)
    })
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

/// Reads a snapshot file's metadata (and with `with_data`, its data, checked against
/// its checksum), checking it matches `expected`.
pub(crate) fn read_snapshot(
    vfs: &dyn Vfs,
    path: &Path,
    expected: &SnapshotMeta,
    with_data: bool,
) -> Result<Snapshot, Error> {
    let region = DataRegion::open(vfs, path, expected)?;
    let data = if with_data { region.read_all()? } else { Bytes::new() };
    Ok(Snapshot {
        meta: expected.clone(),
        data,
    })
}

/// The bytes `offset..offset + want` of a file, cut at its length.
pub(crate) fn read_upto(
    file: &dyn VfsFile,
    offset: usize,
    want: usize,
    len: u64,
    path: &Path,
) -> Result<Vec<u8>, Error> {
    let end = ((offset + want) as u64).min(len);
    let mut buf = vec![0u8; end.saturating_sub(offset as u64) as usize];
    file.read_exact_at(&mut buf, offset as u64)
        .map_err(Error::io("read", path))?;
    Ok(buf)
}

pub(crate) fn check_header(bytes: &[u8], kind: FileKind, path: &Path) -> Result<(), Error> {
    let corrupt = |kind| Error::Corrupt {
        path: path.to_owned(),
        offset: 0,
        kind,
    };
    match decode_file_header(bytes, kind) {
        Ok(_) => Ok(()),
        Err(HeaderProblem::Newer(version)) => Err(Error::NewerFormat {
            path: path.to_owned(),
            version,
            supported: FORMAT_VERSION,
        }),
        Err(HeaderProblem::BadMagic) => Err(corrupt(Corruption::BadMagic)),
        Err(HeaderProblem::Short) => Err(corrupt(Corruption::ShortHeader)),
        Err(HeaderProblem::Zero | HeaderProblem::Checksum) => Err(corrupt(Corruption::HeaderChecksum)),
    }
}

/// The payload of the record at `at`, and where the record ends. These files are
/// written whole before they are renamed into place, so any defect is corruption.
pub(crate) fn read_record<'a>(bytes: &'a [u8], at: usize, path: &Path) -> Result<(&'a [u8], usize), Error> {
    let corrupt = |kind| Error::Corrupt {
        path: path.to_owned(),
        offset: at as u64,
        kind,
    };
    if bytes.len() < at + RECORD_HEADER_LEN {
        return Err(corrupt(Corruption::Truncated));
    }
    let (len, pcrc) = decode_record_header(&bytes[at..at + RECORD_HEADER_LEN]).map_err(corrupt)?;
    let end = at + RECORD_HEADER_LEN + len as usize;
    if bytes.len() < end {
        return Err(corrupt(Corruption::Truncated));
    }
    let payload = &bytes[at + RECORD_HEADER_LEN..end];
    if !payload_ok(payload, pcrc) {
        return Err(corrupt(Corruption::PayloadChecksum));
    }
    Ok((payload, end))
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
