//! A flipped bit anywhere in a record, a file header, the state file or a snapshot is
//! a typed error naming the file (and for a record, its offset): never a wrong entry,
//! never a silently shortened log.

mod common;

use std::path::{Path, PathBuf};

use common::disk_log::write_log;
use raft_core::Storage;
use raft_storage::{contract, Corruption, Error, FileStorage, LogStore};

fn flip(path: &Path, byte: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[byte as usize] ^= 1 << bit;
    std::fs::write(path, bytes).unwrap();
}

/// Flips each bit of `range` in `path` in turn, opening the directory each time; the
/// open must fail, and `check` judges the error. The bit is flipped back after.
fn each_bit(
    dir: &Path,
    options: &raft_storage::Options,
    path: &Path,
    range: std::ops::Range<u64>,
    check: impl Fn(u64, Error),
) {
    for byte in range {
        for bit in 0..8 {
            flip(path, byte, bit);
            match FileStorage::open(dir, options.clone()) {
                Ok(store) => panic!(
                    "{} byte {byte} bit {bit} flipped: opened with last index {}",
                    path.display(),
                    store.last_index().unwrap()
                ),
                Err(e) => check(byte, e),
            }
            flip(path, byte, bit);
        }
    }
}

#[test]
fn every_bit_of_a_record_is_protected_in_every_position_of_the_log() {
    let log = write_log(70, 2048);
    let last_seg = log.records.last().unwrap().0.clone();
    let first_in_last = log.records.iter().position(|r| r.0 == last_seg).unwrap();
    // A record in an older segment, one in the middle of the last, and the very last.
    for i in [10, first_in_last + 1, log.records.len() - 1] {
        let (path, start, end) = log.records[i].clone();
        each_bit(log.dir.path(), &log.options, &path, start..end, |byte, e| match e {
            Error::Corrupt { path: p, offset, kind } => {
                assert_eq!(
                    (p, offset),
                    (path.clone(), start),
                    "record {} byte {byte}: {kind}",
                    i + 1
                );
                assert!(
                    matches!(
                        kind,
                        Corruption::RecordHeaderChecksum | Corruption::PayloadChecksum | Corruption::RecordLength(_)
                    ),
                    "{kind}"
                );
            }
            e => panic!("record {} byte {byte}: want Corrupt, got {e}", i + 1),
        });
    }
    // Undamaged, it still opens to the whole log.
    assert_eq!(common::open(log.dir.path(), &log.options).last_index().unwrap(), 70);
}

#[test]
fn every_bit_of_a_segment_header_is_protected() {
    let log = write_log(40, 2048);
    for path in common::segment_files(log.dir.path()) {
        each_bit(log.dir.path(), &log.options, &path, 0..24, |byte, e| match e {
            Error::Corrupt { path: p, offset: 0, .. } | Error::NewerFormat { path: p, .. } => assert_eq!(p, path),
            e => panic!("header byte {byte}: {e}"),
        });
    }
}

/// A directory with a hard state and a snapshot (so both files exist).
fn with_state_and_snapshot() -> (tempfile::TempDir, raft_storage::Options) {
    let dir = tempfile::tempdir().unwrap();
    let options = common::no_fsync(common::small_options());
    let mut store = common::open(dir.path(), &options);
    store.append(&contract::entries(1..20, 1)).unwrap();
    store.save_snapshot(&contract::snapshot(10, 1, &["a", "b"])).unwrap();
    store
        .set_hard_state(&raft_core::HardState {
            term: 1,
            vote: Some("a".into()),
            commit: 12,
        })
        .unwrap();
    (dir, options)
}

fn file_named(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap()
}

#[test]
fn every_bit_of_the_state_file_is_protected() {
    let (dir, options) = with_state_and_snapshot();
    let state = dir.path().join("state");
    let len = std::fs::metadata(&state).unwrap().len();
    each_bit(dir.path(), &options, &state, 0..len, |byte, e| match e {
        Error::Corrupt { path, .. } | Error::NewerFormat { path, .. } => assert_eq!(path, state, "byte {byte}"),
        e => panic!("state byte {byte}: {e}"),
    });
}

#[test]
fn every_bit_of_a_snapshot_file_is_protected() {
    let (dir, options) = with_state_and_snapshot();
    let snap = file_named(dir.path(), "snapshot-");
    let len = std::fs::metadata(&snap).unwrap().len();
    let data_len = contract::snapshot(10, 1, &[]).data.len() as u64;
    // header (24) | data | metadata record | data length (8) | data checksum (4)
    let data = 24..24 + data_len;
    let crc = len - 4..len;
    // Header, metadata and data length: checked on open.
    for range in [0..data.start, data.end..crc.start] {
        each_bit(dir.path(), &options, &snap, range, |byte, e| match e {
            Error::Corrupt { path, .. } | Error::NewerFormat { path, .. } => assert_eq!(path, snap, "byte {byte}"),
            e => panic!("snapshot byte {byte}: {e}"),
        });
    }
    // The data and its checksum: checked when the snapshot is read (it can be large),
    // whole or as a stream.
    for byte in data.chain(crc) {
        flip(&snap, byte, 3);
        let store = common::open(dir.path(), &options);
        let err = store.snapshot().unwrap_err();
        assert!(
            matches!(
                Error::from_storage(&err),
                Some(Error::Corrupt {
                    kind: Corruption::PayloadChecksum,
                    ..
                })
            ),
            "{err}"
        );
        let mut streamed = Vec::new();
        let err = std::io::Read::read_to_end(&mut store.snapshot_reader().unwrap(), &mut streamed).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "byte {byte}: {err}");
        drop(store);
        flip(&snap, byte, 3);
    }
}

#[test]
fn damage_after_open_is_caught_when_the_entry_is_read_from_disk() {
    let log = write_log(30, 2048);
    let store = common::open(log.dir.path(), &log.options); // no cache: reads go to disk
    let (path, start, end) = log.records[4].clone();
    flip(&path, (start + end) / 2, 0);
    let err = store.entries(1, 31, u64::MAX).unwrap_err();
    match Error::from_storage(&err) {
        Some(Error::Corrupt {
            path: p,
            offset,
            kind: Corruption::PayloadChecksum,
        }) => {
            assert_eq!((p, *offset), (&path, start));
        }
        _ => panic!("{err}"),
    }
    assert_eq!(store.entries(1, 5, u64::MAX).unwrap(), log.entries[..4]);
}
