//! The protocol core fed arbitrary inputs: messages from any sender with any terms,
//! indexes, lengths and offsets (nothing capped), ticks, proposals, snapshots and
//! verdicts, with the driver carrying out every Ready into a `MemStorage`. Nothing
//! may panic; refused input is an error.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raft_core::{Config, MemStorage, Message, RawNode, Storage};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
enum Op {
    Step(Message),
    Tick(u8),
    Propose(Vec<u8>),
    Campaign,
    ReadIndex(Vec<u8>),
    Snapshot(u64),
    SnapshotVerdict(u64, bool),
    ReportUnreachable(String),
    TransferLeader(String),
    Persisted(u64, u64),
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut cfg = Config::new("a");
    cfg.stream_snapshots = flags & 1 == 1;
    cfg.pre_vote = flags & 2 == 2;
    cfg.check_quorum = flags & 4 == 4;
    let Ok(mut node) = RawNode::new(cfg, MemStorage::with_voters(["a", "b", "c"])) else {
        return;
    };
    let mut steps = 0;
    while let Ok((op, tail)) = postcard::take_from_bytes::<Op>(rest) {
        rest = tail;
        steps += 1;
        if steps > 200 {
            break;
        }
        match op {
            Op::Step(m) => {
                let _ = node.step(m);
            }
            Op::Tick(n) => {
                for _ in 0..n.min(30) {
                    node.tick();
                }
            }
            Op::Propose(cmd) => {
                let _ = node.propose(Bytes::from(cmd));
            }
            Op::Campaign => node.campaign(),
            Op::ReadIndex(ctx) => {
                let _ = node.read_index(Bytes::from(ctx));
            }
            Op::Snapshot(index) => {
                if let Ok(s) = node.create_snapshot(index, Bytes::from_static(b"state")) {
                    node.storage_mut().apply_snapshot(s);
                }
            }
            Op::SnapshotVerdict(index, ok) => node.snapshot_received(index, ok),
            Op::ReportUnreachable(to) => node.report_unreachable(&to.into()),
            Op::TransferLeader(to) => {
                let _ = node.transfer_leader(to.into());
            }
            // A late or made-up persistence report.
            Op::Persisted(index, term) => node.on_persisted(index, term),
        }
        while node.has_ready() {
            let rd = node.ready();
            let st = node.storage_mut();
            if let Some(s) = rd.snapshot {
                st.apply_snapshot(s);
            }
            if !rd.entries.is_empty() && st.append(&rd.entries).is_err() {
                return;
            }
            if let Some(hs) = rd.hard_state {
                st.set_hard_state(hs);
            }
            node.advance();
        }
        let st = node.storage();
        let (first, last) = (st.first_index().unwrap_or(0), st.last_index().unwrap_or(0));
        assert!(first <= last.saturating_add(1), "first {first} > last {last} + 1");
    }
});
