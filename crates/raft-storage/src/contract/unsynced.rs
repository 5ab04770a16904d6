//! The checks of [`LogStore::write_unsynced`] and [`LogStore::sync_domain`]: what is
//! written without waiting reads back at once, and is durable after the domain's sync.

use raft_core::HardState;

use super::{entries, eq, expect_log, ok};
use crate::log_store::LogStore;

/// Makes what was written durable: the domain's sync, or nothing without a domain.
fn sync<S: LogStore>(c: &str, s: &S) {
    if let Some(domain) = s.sync_domain() {
        ok(c, "sync", domain.sync());
    }
}

/// `write_unsynced` reads back before any sync, by `append`'s rules (a suffix replaced,
/// entries behind the snapshot skipped), with the hard state after the entries.
pub fn unsynced_writes_read_back<S: LogStore>(mut s: S) {
    let c = "unsynced_writes_read_back";
    let hs = HardState {
        term: 2,
        vote: Some("a".into()),
        commit: 3,
    };
    ok(c, "write_unsynced 1..6", s.write_unsynced(&entries(1..6, 1), None));
    ok(
        c,
        "write_unsynced 4..8 + hs",
        s.write_unsynced(&entries(4..8, 2), Some(&hs)),
    );
    let mut want = entries(1..4, 1);
    want.extend(entries(4..8, 2));
    expect_log(c, &s, 1, &want);
    eq(
        c,
        "hard state",
        ok(c, "initial_state", s.initial_state()).hard_state,
        hs,
    );
    // Only a hard state, then nothing at all.
    let hs2 = HardState {
        commit: 5,
        ..HardState::default()
    };
    ok(c, "write_unsynced hs only", s.write_unsynced(&[], Some(&hs2)));
    ok(c, "write_unsynced nothing", s.write_unsynced(&[], None));
    eq(
        c,
        "hard state 2",
        ok(c, "initial_state", s.initial_state()).hard_state,
        hs2,
    );
    sync(c, &s);
    expect_log(c, &s, 1, &want);
}

/// What `write_unsynced` wrote survives a reopen once the domain synced it.
pub fn reopen_keeps_synced_unsynced_writes<S: LogStore>(mut s: S, reopen: &mut dyn FnMut(S) -> S) {
    let c = "reopen_keeps_synced_unsynced_writes";
    let hs = HardState {
        term: 3,
        vote: Some("c".into()),
        commit: 4,
    };
    ok(c, "write_unsynced", s.write_unsynced(&entries(1..9, 3), Some(&hs)));
    sync(c, &s);
    let s = reopen(s);
    expect_log(c, &s, 1, &entries(1..9, 3));
    eq(
        c,
        "hard state",
        ok(c, "initial_state", s.initial_state()).hard_state,
        hs,
    );
}
