//! Damage to a shared WAL holding many groups' interleaved records. A cut or zeroed
//! tail of the newest segment (a torn write) reopens to exactly the records that are
//! whole, in every group; a cut before the newest segment, and a flipped bit anywhere
//! in a record, is an error naming the file and the record's offset, never a panic, a
//! wrong entry or a silently shortened log.

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::model::view;
use common::multi::group;
use common::multi_disk::{write_multi_log, MultiDiskLog};
use raft_storage::{Corruption, Error, MultiLog};

fn reopen_damaged(
    log: &MultiDiskLog,
    path: &Path,
    damage: impl FnOnce(&Path),
) -> (tempfile::TempDir, Result<MultiLog, Error>) {
    let copy = common::copy_dir(log.dir.path());
    damage(&copy.path().join(path.file_name().unwrap()));
    let r = MultiLog::open(copy.path(), log.options.clone());
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

fn flip(path: &Path, byte: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[byte as usize] ^= 1 << bit;
    std::fs::write(path, bytes).unwrap();
}

/// Every group holds exactly the records `whole(k)` accepts.
fn expect_whole(log: &MultiDiskLog, store: &MultiLog, whole: impl Fn(usize) -> bool, what: &str) {
    assert_eq!(store.groups(), (0..log.groups).collect::<Vec<_>>(), "{what}");
    for g in 0..log.groups {
        assert_eq!(
            view(&group(store, g)).entries,
            log.entries_of(g, &whole),
            "{what}: group {g}"
        );
    }
}

#[test]
fn a_cut_at_every_byte_of_the_newest_records_leaves_exactly_the_whole_records() {
    let log = write_multi_log(8, 30, 10000);
    let last = log.last_segment();
    let in_last: Vec<usize> = (0..log.records.len()).filter(|&k| log.records[k].2 == last).collect();
    assert!(in_last.len() >= 10, "the newest segment should hold several records");
    let from = log.records[in_last[in_last.len() - 6]].3;
    let end = log.records.last().unwrap().4;
    for len in (0..24).chain(from..end) {
        let (_copy, r) = reopen_damaged(&log, &last, |p| cut(p, len));
        let store = r.unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        let rec = &log.records;
        expect_whole(
            &log,
            &store,
            |k| rec[k].2 != last || (len >= 24 && rec[k].4 <= len),
            &format!("cut at {len}"),
        );
    }
}

#[test]
fn zeros_the_disk_never_wrote_at_the_tail_are_a_torn_write() {
    let log = write_multi_log(8, 30, 10000);
    let last = log.last_segment();
    let end = log.records.last().unwrap().4;
    let from = log.records[log.records.len() - 12].3;
    for at in (from.div_ceil(512) * 512..end).step_by(512) {
        let (_copy, r) = reopen_damaged(&log, &last, |p| zero_from(p, at));
        let store = r.unwrap_or_else(|e| panic!("zeros from {at}: {e}"));
        let rec = &log.records;
        expect_whole(
            &log,
            &store,
            |k| rec[k].2 != last || rec[k].4 <= at,
            &format!("zeros from {at}"),
        );
    }
}

#[test]
fn a_cut_before_the_newest_segment_is_an_error_naming_file_and_offset() {
    let log = write_multi_log(8, 30, 4096);
    let last = log.last_segment();
    let (_, _, seg, start, end) = log.records.iter().rev().find(|r| r.2 != last).unwrap().clone();
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
}

#[test]
fn every_bit_of_a_record_is_protected_in_every_position_of_the_log() {
    let log = write_multi_log(8, 12, 1000);
    let last = log.last_segment();
    let first_in_last = log.records.iter().position(|r| r.2 == last).unwrap();
    let checkpoint_end = log.records[first_in_last].3;
    let mut targets = vec![
        (log.records[10].2.clone(), log.records[10].3, log.records[10].4),
        (
            log.records[first_in_last].2.clone(),
            log.records[first_in_last].3,
            log.records[first_in_last].4,
        ),
        (
            last.clone(),
            log.records.last().unwrap().3,
            log.records.last().unwrap().4,
        ),
    ];
    // The newest segment's checkpoint (right after the file header) too.
    targets.push((last.clone(), 24, checkpoint_end.min(24 + 64)));
    for (path, start, end) in targets {
        let copy = common::copy_dir(log.dir.path());
        let target = copy.path().join(path.file_name().unwrap());
        for byte in start..end {
            for bit in 0..8 {
                flip(&target, byte, bit);
                match MultiLog::open(copy.path(), log.options.clone()) {
                    Ok(_) => panic!("{} byte {byte} bit {bit} flipped: opened", target.display()),
                    Err(Error::Corrupt { path: p, offset, kind }) => {
                        assert_eq!((p, offset), (target.clone(), start), "byte {byte} bit {bit}: {kind}")
                    }
                    Err(e) => panic!("byte {byte} bit {bit}: want Corrupt, got {e}"),
                }
                flip(&target, byte, bit);
            }
        }
    }
}

#[test]
fn a_flipped_bit_in_a_file_header_is_refused() {
    let log = write_multi_log(4, 10, 1024);
    for seg in common::multi_disk::segments(log.dir.path()) {
        let copy = common::copy_dir(log.dir.path());
        let target = copy.path().join(seg.file_name().unwrap());
        for byte in 0..24 {
            flip(&target, byte, 3);
            let r = MultiLog::open(copy.path(), log.options.clone());
            assert!(
                matches!(&r, Err(Error::Corrupt { path, offset: 0, .. }) if *path == target)
                    || matches!(r, Err(Error::NewerFormat { .. })),
                "{} byte {byte}: {r:?}",
                target.display()
            );
            flip(&target, byte, 3);
        }
    }
}
