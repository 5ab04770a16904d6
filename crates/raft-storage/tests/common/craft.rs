//! Hand-made data directories, written byte by byte from the format in
//! `docs/storage.md` (not through `FileStorage`), so tests can build what the storage
//! itself would never write: a snapshot at `u64::MAX`, a segment named 0, terms that
//! go down.

use std::path::{Path, PathBuf};

use raft_core::{Entry, HardState, SnapshotMeta};
use serde::{Deserialize, Serialize};

/// The state file's record, as `docs/storage.md` describes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub snapshot_file: bool,
}

/// A file header of `magic` with `base`.
pub fn header(magic: &[u8; 8], base: u64) -> Vec<u8> {
    let mut h = magic.to_vec();
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// One record holding `payload`.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut r = len.to_vec();
    r.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    r.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    r.extend_from_slice(payload);
    r
}

/// Writes the state file.
pub fn write_state(dir: &Path, state: &State) -> PathBuf {
    let mut bytes = header(b"ERAFTSTA", 0);
    bytes.extend(record(&postcard::to_stdvec(state).unwrap()));
    let path = dir.join("state");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reads the state file back.
pub fn read_state(dir: &Path) -> State {
    let bytes = std::fs::read(dir.join("state")).unwrap();
    postcard::from_bytes(&bytes[36..]).unwrap()
}

/// Writes the snapshot file for `meta` with `data`.
pub fn write_snapshot(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> PathBuf {
    let mut bytes = header(b"ERAFTSNP", meta.index);
    bytes.extend(record(&postcard::to_stdvec(meta).unwrap()));
    bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    bytes.extend_from_slice(data);
    let path = dir.join(format!("snapshot-{:020}-{:020}.snap", meta.index, meta.term));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes the segment named `first` holding `entries` (whatever their indexes);
/// returns its path and where each record starts.
pub fn write_segment(dir: &Path, first: u64, entries: &[Entry]) -> (PathBuf, Vec<u64>) {
    let mut bytes = header(b"ERAFTLOG", first);
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(bytes.len() as u64);
        bytes.extend(record(&postcard::to_stdvec(e).unwrap()));
    }
    let path = dir.join(format!("{first:020}.wal"));
    std::fs::write(&path, bytes).unwrap();
    (path, offsets)
}

/// Recomputes every checksum of a file of ours after its bytes were changed, as far as
/// its record lengths still make sense, so the damage reaches the checks behind them.
pub fn fix_checksums(bytes: &mut [u8]) {
    if bytes.len() < 24 {
        return;
    }
    let crc = crc32fast::hash(&bytes[..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let snapshot = &bytes[..8] == b"ERAFTSNP";
    let mut pos = 24;
    while pos + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let end = pos + 12 + len;
        if len == 0 || end > bytes.len() {
            return;
        }
        let lcrc = crc32fast::hash(&bytes[pos..pos + 4]);
        bytes[pos + 4..pos + 8].copy_from_slice(&lcrc.to_le_bytes());
        let pcrc = crc32fast::hash(&bytes[pos + 12..end]);
        bytes[pos + 8..pos + 12].copy_from_slice(&pcrc.to_le_bytes());
        pos = end;
        if snapshot {
            // The metadata record, then the data frame: len u64, crc32, data.
            if pos + 12 <= bytes.len() {
                let crc = crc32fast::hash(&bytes[pos + 12..]);
                bytes[pos + 8..pos + 12].copy_from_slice(&crc.to_le_bytes());
            }
            return;
        }
    }
}
