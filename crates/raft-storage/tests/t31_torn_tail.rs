//! A crash in the middle of a write leaves the last segment cut short, or ending in
//! zeros the disk never wrote. Cut or zeroed at every byte of the last records, the log
//! reopens to exactly the entries whose records are whole; a damaged tail anywhere
//! but in the last segment is an error naming the file and offset.

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::disk_log::{write_log, DiskLog};
use common::model::view;
use raft_core::Storage;
use raft_storage::{Corruption, Error, FileStorage};

/// Reopens a copy of the log with `damage` done to its file `path` (relative name).
fn reopen_damaged(
    log: &DiskLog,
    path: &Path,
    damage: impl FnOnce(&Path),
) -> (tempfile::TempDir, Result<FileStorage, Error>) {
    let copy = common::copy_dir(log.dir.path());
    let target = copy.path().join(path.file_name().unwrap());
    damage(&target);
    let r = FileStorage::open(copy.path(), log.options.clone());
    (copy, r)
}

fn cut(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn zero_from(path: &Path, from: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[from as usize..].fill(0);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_cut_at_every_byte_of_the_last_records_leaves_exactly_the_whole_records() {
    let log = write_log(70, 2048);
    let (last_seg, _, _) = log.records.last().unwrap().clone();
    let in_last: Vec<usize> = (0..log.records.len())
        .filter(|&i| log.records[i].0 == last_seg)
        .collect();
    assert!(in_last.len() >= 5, "the last segment should hold several records");
    let from = log.records[in_last[in_last.len() - 4]].1;
    let end = log.records.last().unwrap().2;
    // Cuts inside the file header too: the segment then holds nothing and goes.
    for len in (0..24).chain(from..end) {
        let (_copy, r) = reopen_damaged(&log, &last_seg, |p| cut(p, len));
        let store = r.unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        let whole = log
            .records
            .iter()
            .take_while(|(p, _, e)| *p != last_seg || *e <= len)
            .count();
        assert_eq!(view(&store).entries, log.entries[..whole], "cut at {len}");
        assert_eq!(store.last_index().unwrap(), whole as u64, "cut at {len}");
    }
}

#[test]
fn zeros_the_disk_never_wrote_at_the_tail_are_a_torn_write() {
    let log = write_log(70, 2048);
    let (last_seg, _, _) = log.records.last().unwrap().clone();
    let end = log.records.last().unwrap().2;
    let from = log.records[log.records.len() - 6].1;
    // Sector-aligned zero runs, as a disk leaves them.
    for at in (from.div_ceil(512) * 512..end).step_by(512).chain([0]) {
        let (_copy, r) = reopen_damaged(&log, &last_seg, |p| zero_from(p, at));
        let store = r.unwrap_or_else(|e| panic!("zeros from {at}: {e}"));
        let whole = log
            .records
            .iter()
            .take_while(|(p, _, e)| *p != last_seg || *e <= at)
            .count();
        assert_eq!(view(&store).entries, log.entries[..whole], "zeros from {at}");
    }
}

#[test]
fn a_cut_before_the_last_segment_is_an_error_naming_file_and_offset() {
    let log = write_log(60, 2048);
    let (last_seg, _, _) = log.records.last().unwrap().clone();
    let (seg, start, end) = log
        .records
        .iter()
        .rev()
        .find(|(p, _, _)| *p != last_seg)
        .unwrap()
        .clone();
    for len in start + 1..end {
        let (copy, r) = reopen_damaged(&log, &seg, |p| cut(p, len));
        match r {
            Err(Error::Corrupt {
                path,
                offset,
                kind: Corruption::Truncated,
            }) => {
                assert_eq!(path, copy.path().join(seg.file_name().unwrap()));
                assert_eq!(offset, start, "cut at {len}");
            }
            other => panic!("cut at {len}: want a Truncated error, got {other:?}"),
        }
    }
    // Cut at a record boundary: the next segment then starts after a hole.
    let (_copy, r) = reopen_damaged(&log, &seg, |p| cut(p, start));
    assert!(matches!(r, Err(Error::MissingSegment { .. })), "{r:?}");
}
