//! Opening and reading a `FileStorage` data directory in which one file was mutated:
//! bytes flipped at chosen offsets, the file cut short or grown, and optionally every
//! checksum fixed up afterwards so that the mutation reaches the decoders behind the
//! checks. Opening either fails with a typed error or gives a storage whose every read
//! answers (an entry, or an error); nothing panics.
#![no_main]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raft_core::{Entry, EntryPayload, HardState, Membership, SnapshotMeta, Storage};
use raft_storage::{Durability, FileStorage, LogStore, Options};

fn options() -> Options {
    Options::default()
        .durability(Durability::UnsafeNoFsyncForTests)
        .segment_size(4096)
}

/// A directory with a snapshot, several segments and a hard state, made once.
fn template() -> &'static (tempfile::TempDir, Vec<String>) {
    static T: OnceLock<(tempfile::TempDir, Vec<String>)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = FileStorage::open(dir.path(), options()).expect("open");
        let entries: Vec<Entry> = (1..=400)
            .map(|i| Entry {
                term: 1 + i / 100,
                index: i,
                payload: if i % 50 == 0 {
                    EntryPayload::Membership(Membership::with_voters(["a", "b"]))
                } else {
                    EntryPayload::Command(Bytes::from(vec![i as u8; (i % 97) as usize]))
                },
            })
            .collect();
        s.append(&entries).expect("append");
        let mut sink = s.snapshot_sink().expect("sink");
        sink.write_all(&[5u8; 3000]).expect("write");
        let meta = SnapshotMeta {
            index: 120,
            term: 2,
            membership: Membership::with_voters(["a", "b", "c"]),
        };
        s.install_snapshot(&meta, sink.finish().expect("finish"))
            .expect("install");
        s.set_hard_state(&HardState {
            term: 5,
            vote: Some("b".into()),
            commit: 300,
        })
        .expect("hard state");
        drop(s);
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .filter(|n| n != "LOCK")
            .collect();
        files.sort();
        (dir, files)
    })
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("list") {
        let e = e.expect("entry");
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// Recomputes the file header's checksum and those of the records after it.
fn fix_checksums(bytes: &mut [u8]) {
    if bytes.len() < 24 {
        return;
    }
    let crc = crc32fast::hash(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let fix_record = |bytes: &mut [u8], at: usize| -> Option<usize> {
        let head = bytes.get(at..at + 12)?;
        let len = u32::from_le_bytes(head[0..4].try_into().ok()?) as usize;
        let end = at.checked_add(12)?.checked_add(len)?;
        if end > bytes.len() {
            return None;
        }
        let lcrc = crc32fast::hash(&bytes[at..at + 4]);
        let pcrc = crc32fast::hash(&bytes[at + 12..end]);
        bytes[at + 4..at + 8].copy_from_slice(&lcrc.to_le_bytes());
        bytes[at + 8..at + 12].copy_from_slice(&pcrc.to_le_bytes());
        Some(end)
    };
    if &bytes[0..8] == b"ERAFTSNP" {
        // data | meta record | len | crc(data)
        let n = bytes.len();
        if n < 24 + 24 {
            return;
        }
        let len = u64::from_le_bytes(bytes[n - 12..n - 4].try_into().unwrap_or_default()) as usize;
        let Some(data_end) = 24usize.checked_add(len).filter(|&e| e <= n - 12) else {
            return;
        };
        let crc = crc32fast::hash(&bytes[24..data_end]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let _ = fix_record(bytes, data_end);
    } else {
        let mut at = 24;
        while let Some(next) = fix_record(bytes, at) {
            at = next;
        }
    }
}

fn read_everything(s: &FileStorage) {
    let _ = s.initial_state();
    let (Ok(first), Ok(last)) = (s.first_index(), s.last_index()) else {
        return;
    };
    let mut low = first;
    let high = last.saturating_add(1).min(first.saturating_add(2000));
    while low < high {
        match s.entries(low, high, 4096) {
            Ok(es) if !es.is_empty() => low = low.saturating_add(es.len() as u64),
            _ => break,
        }
    }
    for i in first.saturating_sub(1)..high.min(first.saturating_add(50)) {
        let _ = s.term(i);
    }
    if let Ok(info) = s.snapshot_info() {
        let _ = s.snapshot_chunk(info.meta.index, 0, 1024);
        let _ = s.snapshot_chunk(info.meta.index, info.len.saturating_sub(7), 1024);
    }
    if let Ok(mut r) = s.snapshot_reader() {
        let mut out = Vec::new();
        let _ = r.read_to_end(&mut out);
    }
    let _ = s.snapshot();
}

fuzz_target!(|data: &[u8]| {
    let (tpl, files) = template();
    let [pick, mode, rest @ ..] = data else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(tpl.path(), dir.path());
    let path: PathBuf = dir.path().join(&files[*pick as usize % files.len()]);
    let mut bytes = std::fs::read(&path).expect("read");
    // Mutations: (offset u16, xor u8) triples; mode bit 1: cut at the first offset;
    // bit 2: append the rest; bit 0: fix the checksums afterwards.
    for m in rest.chunks_exact(3).take(16) {
        if bytes.is_empty() {
            break;
        }
        let at = u16::from_le_bytes([m[0], m[1]]) as usize % bytes.len();
        bytes[at] ^= m[2];
    }
    if mode & 2 == 2 {
        if let Some(m) = rest.get(0..2) {
            let at = u16::from_le_bytes([m[0], m[1]]) as usize;
            bytes.truncate(at.min(bytes.len()));
        }
    }
    if mode & 4 == 4 {
        bytes.extend_from_slice(rest);
    }
    if mode & 1 == 1 {
        fix_checksums(&mut bytes);
    }
    std::fs::write(&path, &bytes).expect("write");
    if let Ok(s) = FileStorage::open(dir.path(), options()) {
        read_everything(&s);
    }
});
