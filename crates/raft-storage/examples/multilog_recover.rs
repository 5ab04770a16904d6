//! Measures how long a [`MultiLog`] of many groups takes to reopen (recovery replays
//! its segments). `cargo run --release -p raft-storage --example multilog_recover --
//! [groups] [entries per group]` (defaults: 1000 groups, 3 entries each).

use std::time::Instant;

use bytes::Bytes;
use raft_core::{Entry, EntryPayload, HardState, Storage};
use raft_storage::{LogStore, MultiLog, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let groups = args.next().transpose()?.unwrap_or(1000);
    let per_group = args.next().transpose()?.unwrap_or(3);
    let dir = tempfile::tempdir()?;
    let options = Options::default();
    let log = MultiLog::open(dir.path(), options.clone())?;
    for g in 0..groups {
        let entries: Vec<Entry> = (1..=per_group)
            .map(|index| Entry {
                term: 1,
                index,
                payload: EntryPayload::Command(Bytes::from(vec![7u8; 100])),
            })
            .collect();
        let hs = HardState {
            term: 1,
            vote: Some("n1".into()),
            commit: per_group,
        };
        log.group(g)?.write_unsynced(&entries, Some(&hs))?;
    }
    log.sync()?;
    let stats = log.stats();
    drop(log);

    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let log = MultiLog::open(dir.path(), options.clone())?;
        let took = start.elapsed().as_secs_f64();
        best = best.min(took);
        assert_eq!(log.groups().len() as u64, groups);
        assert_eq!(log.group(groups - 1)?.last_index()?, per_group);
    }
    println!(
        "multilog_recover_{groups}_groups: {per_group} entries each, {} segment(s): best of 5 reopens {:.2} ms",
        stats.segments,
        best * 1e3
    );
    Ok(())
}
