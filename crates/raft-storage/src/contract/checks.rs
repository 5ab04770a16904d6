//! The checks of the contract suite, one function per promise.

use bytes::Bytes;
use raft_core::{Entry, EntryPayload, HardState, Membership, SnapshotMeta, StorageError};

use super::{entries, eq, expect_log, is_compacted, is_unavailable, ok, snapshot};
use crate::log_store::LogStore;

/// A new storage has an empty log at index 0 and a default hard state.
pub fn empty_storage<S: LogStore>(s: S) {
    let c = "empty_storage";
    expect_log(c, &s, 1, &[]);
    eq(c, "term(0)", ok(c, "term(0)", s.term(0)), 0);
    eq(
        c,
        "hard state",
        ok(c, "initial_state", s.initial_state()).hard_state,
        HardState::default(),
    );
    eq(c, "snapshot index", ok(c, "snapshot", s.snapshot()).meta.index, 0);
}

/// Appended entries read back with their terms.
pub fn append_and_read_back<S: LogStore>(mut s: S) {
    let c = "append_and_read_back";
    let mut want = entries(1..4, 1);
    ok(c, "append 1..4", s.append(&want));
    want.extend(entries(4..6, 2));
    ok(c, "append 4..6", s.append(&want[3..]));
    expect_log(c, &s, 1, &want);
    eq(
        c,
        "entries(2..4)",
        ok(c, "entries", s.entries(2, 4, u64::MAX)),
        want[1..3].to_vec(),
    );
}

/// `entries` stops before the entry that would exceed `max_bytes`, but returns one at least.
pub fn entries_respect_max_bytes<S: LogStore>(mut s: S) {
    let c = "entries_respect_max_bytes";
    let all = entries(1..11, 1);
    ok(c, "append", s.append(&all));
    let size = all[0].size(); // all ten have the same size
    eq(
        c,
        "max 0 gives one",
        ok(c, "entries", s.entries(1, 11, 0)),
        all[..1].to_vec(),
    );
    eq(
        c,
        "max 3.5 sizes gives 3",
        ok(c, "entries", s.entries(1, 11, size * 7 / 2)),
        all[..3].to_vec(),
    );
    eq(
        c,
        "max 3 sizes gives 3",
        ok(c, "entries", s.entries(4, 11, size * 3)),
        all[3..6].to_vec(),
    );
    eq(c, "unbounded", ok(c, "entries", s.entries(1, 11, u64::MAX)).len(), 10);
}

/// Reads behind the snapshot are `Compacted`, beyond the log `Unavailable`.
pub fn out_of_range_reads_fail<S: LogStore>(mut s: S) {
    let c = "out_of_range_reads_fail";
    ok(c, "append", s.append(&entries(1..11, 1)));
    ok(c, "save_snapshot", s.save_snapshot(&snapshot(5, 1, &["a"])));
    is_compacted(c, "entries(5..7)", s.entries(5, 7, u64::MAX));
    is_compacted(c, "term(4)", s.term(4));
    is_unavailable(c, "entries(6..12)", s.entries(6, 12, u64::MAX));
    is_unavailable(c, "term(11)", s.term(11));
    eq(c, "term(5) is the snapshot's", ok(c, "term(5)", s.term(5)), 1);
    eq(c, "entries(7..7)", ok(c, "entries", s.entries(7, 7, u64::MAX)), vec![]);
}

/// Entries starting inside the log replace everything from their index on.
pub fn append_replaces_suffix<S: LogStore>(mut s: S) {
    let c = "append_replaces_suffix";
    ok(c, "append 1..11", s.append(&entries(1..11, 1)));
    let mut want = entries(1..5, 1);
    want.extend(entries(5..7, 2));
    ok(c, "append 5..7 of term 2", s.append(&want[4..]));
    expect_log(c, &s, 1, &want);
    want.truncate(1);
    want.extend(entries(2..3, 3));
    ok(c, "append 2..3 of term 3", s.append(&want[1..]));
    expect_log(c, &s, 1, &want);
}

/// Entries that would leave a gap are refused with `Unavailable`, and change nothing.
pub fn append_with_gap_is_refused<S: LogStore>(mut s: S) {
    let c = "append_with_gap_is_refused";
    ok(c, "append", s.append(&entries(1..4, 1)));
    is_unavailable(c, "append 5..6", s.append(&entries(5..6, 1)));
    expect_log(c, &s, 1, &entries(1..4, 1));
}

/// Entries at or behind the snapshot are skipped; the rest are appended.
pub fn append_skips_entries_behind_snapshot<S: LogStore>(mut s: S) {
    let c = "append_skips_entries_behind_snapshot";
    ok(c, "append", s.append(&entries(1..6, 1)));
    ok(c, "save_snapshot", s.save_snapshot(&snapshot(5, 1, &["a"])));
    ok(c, "append 3..5 (all compacted)", s.append(&entries(3..5, 1)));
    expect_log(c, &s, 6, &[]);
    ok(c, "append 4..8", s.append(&entries(4..8, 1)));
    expect_log(c, &s, 6, &entries(6..8, 1));
}

/// Appending nothing changes nothing.
pub fn empty_append_changes_nothing<S: LogStore>(mut s: S) {
    let c = "empty_append_changes_nothing";
    ok(c, "append", s.append(&entries(1..4, 1)));
    ok(c, "append []", s.append(&[]));
    expect_log(c, &s, 1, &entries(1..4, 1));
}

/// The hard state reads back as set, each time.
pub fn hard_state_round_trips<S: LogStore>(mut s: S) {
    let c = "hard_state_round_trips";
    ok(c, "append", s.append(&entries(1..3, 1)));
    for hs in [
        HardState {
            term: 1,
            vote: Some("a".into()),
            commit: 0,
        },
        HardState {
            term: 1,
            vote: Some("a".into()),
            commit: 2,
        },
        HardState {
            term: 2,
            vote: None,
            commit: 2,
        },
    ] {
        ok(c, "set_hard_state", s.set_hard_state(&hs));
        eq(
            c,
            "hard state",
            ok(c, "initial_state", s.initial_state()).hard_state,
            hs,
        );
    }
}

/// A snapshot of one's own log drops the entries up to it and keeps the rest.
pub fn compaction_keeps_later_entries<S: LogStore>(mut s: S) {
    let c = "compaction_keeps_later_entries";
    ok(c, "append", s.append(&entries(1..11, 1)));
    ok(
        c,
        "set_hard_state",
        s.set_hard_state(&HardState {
            term: 1,
            vote: None,
            commit: 3,
        }),
    );
    let snap = snapshot(5, 1, &["a", "b"]);
    ok(c, "save_snapshot", s.save_snapshot(&snap));
    expect_log(c, &s, 6, &entries(6..11, 1));
    eq(c, "snapshot", ok(c, "snapshot", s.snapshot()), snap.clone());
    let state = ok(c, "initial_state", s.initial_state());
    eq(
        c,
        "membership is the snapshot's",
        state.membership,
        snap.meta.membership,
    );
    eq(c, "commit rises to the snapshot", state.hard_state.commit, 5);
}

/// A snapshot whose last entry conflicts with the log replaces the whole log.
pub fn conflicting_snapshot_drops_log<S: LogStore>(mut s: S) {
    let c = "conflicting_snapshot_drops_log";
    ok(c, "append", s.append(&entries(1..11, 1)));
    ok(c, "save_snapshot", s.save_snapshot(&snapshot(5, 2, &["a"])));
    expect_log(c, &s, 6, &[]);
    eq(c, "term(5)", ok(c, "term(5)", s.term(5)), 2);
    ok(c, "append after", s.append(&entries(6..8, 2)));
    expect_log(c, &s, 6, &entries(6..8, 2));
}

/// A snapshot beyond the log replaces the whole log.
pub fn snapshot_beyond_log_drops_log<S: LogStore>(mut s: S) {
    let c = "snapshot_beyond_log_drops_log";
    ok(c, "append", s.append(&entries(1..4, 1)));
    ok(c, "save_snapshot", s.save_snapshot(&snapshot(20, 3, &["a"])));
    expect_log(c, &s, 21, &[]);
    ok(c, "append after", s.append(&entries(21..23, 3)));
    expect_log(c, &s, 21, &entries(21..23, 3));
    eq(
        c,
        "commit",
        ok(c, "initial_state", s.initial_state()).hard_state.commit,
        20,
    );
}

/// A snapshot older than the current one changes nothing.
pub fn stale_snapshot_is_ignored<S: LogStore>(mut s: S) {
    let c = "stale_snapshot_is_ignored";
    ok(c, "append", s.append(&entries(1..11, 1)));
    let snap = snapshot(6, 1, &["a"]);
    ok(c, "save_snapshot 6", s.save_snapshot(&snap));
    ok(c, "save_snapshot 3", s.save_snapshot(&snapshot(3, 1, &["b"])));
    expect_log(c, &s, 7, &entries(7..11, 1));
    eq(c, "snapshot", ok(c, "snapshot", s.snapshot()), snap);
}

/// Noop, command and membership entries (with empty and large payloads) read back.
pub fn every_payload_kind_round_trips<S: LogStore>(mut s: S) {
    let c = "every_payload_kind_round_trips";
    let mut joint = Membership::with_voters(["a", "b", "c"]);
    joint.voters_outgoing = ["a", "b", "d"].into_iter().map(Into::into).collect();
    joint.learners = ["e"].into_iter().map(Into::into).collect();
    let payloads = [
        EntryPayload::Noop,
        EntryPayload::Command(Bytes::new()),
        EntryPayload::Command(Bytes::from(vec![0xa5; 100_000])),
        EntryPayload::Membership(joint),
        EntryPayload::Membership(Membership::default()),
    ];
    let want: Vec<Entry> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| Entry {
            term: 1,
            index: i as u64 + 1,
            payload,
        })
        .collect();
    ok(c, "append", s.append(&want));
    expect_log(c, &s, 1, &want);
}

/// A longer log reads back through windows of every shape.
pub fn many_entries_read_in_windows<S: LogStore>(mut s: S) {
    let c = "many_entries_read_in_windows";
    let mut want = Vec::new();
    for batch in 0..20u64 {
        let term = 1 + batch / 5;
        let batch_entries = entries(batch * 50 + 1..batch * 50 + 51, term);
        ok(c, "append", s.append(&batch_entries));
        want.extend(batch_entries);
    }
    expect_log(c, &s, 1, &want);
    for (low, high, max) in [(1, 1001, 1000), (37, 512, 1), (480, 1001, 10_000), (999, 1001, 0)] {
        let got = ok(c, "entries", s.entries(low, high, max));
        let mut expected = want[low as usize - 1..high as usize - 1].to_vec();
        let mut total = 0;
        let keep = expected.iter().take_while(|e| {
            total += e.size();
            total <= max
        });
        let n = keep.count().max(1);
        expected.truncate(n);
        eq(c, &format!("entries({low}..{high}, max {max})"), got, expected);
    }
}

/// Entries, hard state and snapshot all survive a reopen.
pub fn reopen_keeps_everything<S: LogStore>(mut s: S, reopen: &mut dyn FnMut(S) -> S) {
    let c = "reopen_keeps_everything";
    ok(c, "append", s.append(&entries(1..11, 1)));
    let snap = snapshot(4, 1, &["a", "b", "c"]);
    ok(c, "save_snapshot", s.save_snapshot(&snap));
    let hs = HardState {
        term: 2,
        vote: Some("b".into()),
        commit: 7,
    };
    ok(c, "set_hard_state", s.set_hard_state(&hs));
    let s = reopen(s);
    expect_log(c, &s, 5, &entries(5..11, 1));
    eq(
        c,
        "hard state",
        ok(c, "initial_state", s.initial_state()).hard_state,
        hs,
    );
    eq(c, "snapshot", ok(c, "snapshot", s.snapshot()), snap);
}

/// A replaced suffix stays replaced after a reopen.
pub fn reopen_keeps_replaced_suffix<S: LogStore>(mut s: S, reopen: &mut dyn FnMut(S) -> S) {
    let c = "reopen_keeps_replaced_suffix";
    ok(c, "append", s.append(&entries(1..100, 1)));
    let mut want = entries(1..30, 1);
    want.extend(entries(30..35, 2));
    ok(c, "append 30..35", s.append(&want[29..]));
    let s = reopen(s);
    expect_log(c, &s, 1, &want);
}

/// Compaction survives a reopen, and appends continue after it.
pub fn reopen_keeps_compaction_and_appends_continue<S: LogStore>(mut s: S, reopen: &mut dyn FnMut(S) -> S) {
    let c = "reopen_keeps_compaction_and_appends_continue";
    ok(c, "append", s.append(&entries(1..200, 1)));
    ok(c, "save_snapshot", s.save_snapshot(&snapshot(150, 1, &["a"])));
    let mut s = reopen(s);
    expect_log(c, &s, 151, &entries(151..200, 1));
    ok(c, "append 200..210", s.append(&entries(200..210, 2)));
    let s = reopen(s);
    let mut want = entries(151..200, 1);
    want.extend(entries(200..210, 2));
    expect_log(c, &s, 151, &want);
}

/// A log replaced by a conflicting snapshot stays gone after a reopen.
pub fn reopen_keeps_dropped_log<S: LogStore>(mut s: S, reopen: &mut dyn FnMut(S) -> S) {
    let c = "reopen_keeps_dropped_log";
    ok(c, "append", s.append(&entries(1..50, 1)));
    ok(c, "save_snapshot", s.save_snapshot(&snapshot(30, 2, &["a"])));
    let mut s = reopen(s);
    expect_log(c, &s, 31, &[]);
    ok(c, "append", s.append(&entries(31..33, 2)));
    let s = reopen(s);
    expect_log(c, &s, 31, &entries(31..33, 2));
}

/// The data of `len` bytes a streamed snapshot holds in these checks.
fn streamed_data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Writes `data` into a sink in uneven pieces and installs it as `meta`.
fn install_streamed<S: LogStore>(c: &str, s: &mut S, meta: &SnapshotMeta, data: &[u8]) {
    use std::io::{Read, Write};
    let mut sink = ok(c, "snapshot_sink", s.snapshot_sink());
    for piece in data.chunks(1000) {
        ok(
            c,
            "write to the sink",
            sink.write_all(piece).map_err(StorageError::other),
        );
    }
    eq(c, "sink length", sink.len(), data.len() as u64);
    let staged = ok(c, "finish", sink.finish());
    eq(c, "staged crc", staged.crc(), crc32fast::hash(data));
    let mut back = Vec::new();
    ok(
        c,
        "read the staged data",
        staged.reader().read_to_end(&mut back).map_err(StorageError::other),
    );
    eq(c, "staged data reads back", back.len(), data.len());
    eq(c, "staged data reads back intact", back.as_slice() == data, true);
    ok(c, "install_snapshot", s.install_snapshot(meta, staged));
}

/// Reads the current snapshot back through every way the core and a runtime use.
fn expect_streamed<S: LogStore>(c: &str, s: &S, meta: &SnapshotMeta, data: &[u8]) {
    use std::io::Read;
    let info = ok(c, "snapshot_info", s.snapshot_info());
    eq(c, "info meta", &info.meta, meta);
    eq(c, "info len", info.len, data.len() as u64);
    eq(c, "info crc", info.crc, crc32fast::hash(data));
    let mut chunks = Vec::new();
    let mut offset = 0u64;
    loop {
        let chunk = ok(c, "snapshot_chunk", s.snapshot_chunk(meta.index, offset, 4096));
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        chunks.extend_from_slice(&chunk);
    }
    eq(c, "chunks reassemble the data", chunks.as_slice() == data, true);
    let mut streamed = Vec::new();
    let mut reader = ok(c, "snapshot_reader", s.snapshot_reader());
    ok(
        c,
        "read the snapshot",
        reader.read_to_end(&mut streamed).map_err(StorageError::other),
    );
    eq(c, "the reader gives the data", streamed.as_slice() == data, true);
    eq(
        c,
        "snapshot() gives the data",
        &ok(c, "snapshot", s.snapshot()).data[..] == data,
        true,
    );
    if s.snapshot_chunk(meta.index.wrapping_add(1), 0, 1).is_ok() {
        panic!("{c}: a chunk of a snapshot that is not the current one must be refused");
    }
}

/// A snapshot written as a stream (staged, read back, installed) is read back the same
/// in chunks, as a stream and whole, and compacts the log like `save_snapshot`.
pub fn streamed_snapshot_round_trips<S: LogStore>(mut s: S) {
    let c = "streamed_snapshot_round_trips";
    ok(c, "append", s.append(&entries(1..11, 1)));
    let meta = snapshot(6, 1, &["a", "b"]).meta;
    let data = streamed_data(70_001);
    install_streamed(c, &mut s, &meta, &data);
    expect_log(c, &s, 7, &entries(7..11, 1));
    expect_streamed(c, &s, &meta, &data);
    // A staged snapshot that is dropped instead of installed changes nothing.
    let mut sink = ok(c, "snapshot_sink", s.snapshot_sink());
    ok(
        c,
        "write",
        std::io::Write::write_all(&mut sink, b"abandoned").map_err(StorageError::other),
    );
    drop(ok(c, "finish", sink.finish()));
    expect_streamed(c, &s, &meta, &data);
}

/// A streamed snapshot survives a reopen.
pub fn reopen_keeps_streamed_snapshot<S: LogStore>(mut s: S, reopen: &mut dyn FnMut(S) -> S) {
    let c = "reopen_keeps_streamed_snapshot";
    ok(c, "append", s.append(&entries(1..5, 2)));
    let meta = snapshot(8, 3, &["a"]).meta;
    let data = streamed_data(9_999);
    install_streamed(c, &mut s, &meta, &data);
    let s = reopen(s);
    expect_log(c, &s, 9, &[]);
    expect_streamed(c, &s, &meta, &data);
}
