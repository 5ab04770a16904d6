//! The byte caps of flow control: in-flight bytes per follower
//! (`max_inflight_bytes`) and uncommitted bytes on the leader
//! (`max_uncommitted_bytes`).

mod harness;

use bytes::Bytes;
use harness::*;
use raft_core::*;

/// The size `Entry::size` gives a command of `payload` bytes.
fn entry_size(payload: usize) -> u64 {
    Entry {
        term: 1,
        index: 1,
        payload: EntryPayload::Command(Bytes::from(vec![0u8; payload])),
    }
    .size()
}

/// Every entry `a` sent to `to` in `msgs`, as (appends with entries, entries, bytes).
fn appends_to(msgs: &[Message], to: &str) -> (usize, usize, u64) {
    let mut out = (0, 0, 0);
    for m in msgs.iter().filter(|m| m.to == id(to)) {
        if let MessageBody::AppendEntries(a) = &m.body {
            if !a.entries.is_empty() {
                out.0 += 1;
                out.1 += a.entries.len();
                out.2 += a.entries.iter().map(Entry::size).sum::<u64>();
            }
        }
    }
    out
}

/// Ticks every node once and delivers until quiet; returns what `to` was sent.
fn tick_and_count(net: &mut Net, to: &str) -> (usize, usize, u64) {
    for node in net.nodes.values_mut() {
        node.tick();
    }
    let mut total = (0, 0, 0);
    for _ in 0..1000 {
        let msgs = net.take();
        if msgs.is_empty() {
            break;
        }
        let (n, e, b) = appends_to(&msgs, to);
        total = (total.0 + n, total.1 + e, total.2 + b);
        for m in msgs {
            net.deliver(m);
        }
    }
    total
}

fn command(i: usize, len: usize) -> Bytes {
    let mut v = vec![0u8; len];
    let tag = (i as u64).to_be_bytes();
    let n = len.min(8);
    v[..n].copy_from_slice(&tag[..n]);
    Bytes::from(v)
}

const CAP: u64 = 1000;

#[test]
fn a_follower_that_never_acks_receives_at_most_the_byte_budget() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_entries_per_msg = 1;
        c.max_inflight_msgs = 1000;
        c.max_inflight_bytes = CAP;
    });
    net.elect("a");
    net.tick_all(1);
    // b receives everything but its answers never reach the leader.
    net.cut.insert((id("b"), id("a")));
    let size = entry_size(100);
    for i in 0..50 {
        net.node("a").propose(command(i, 100)).unwrap();
    }
    let msgs = net.take();
    let (appends, entries, bytes) = appends_to(&msgs, "b");
    let bound = CAP.div_ceil(size) as usize + 1;
    assert!(
        appends <= bound,
        "b got {appends} appends ({bytes} bytes) unacknowledged; at most {bound} fit a budget of {CAP} bytes"
    );
    assert!(bytes <= CAP + size, "{bytes} bytes in flight to b");
    assert!(
        entries as u64 >= CAP / size,
        "the budget is used, not stalled: {entries} entries"
    );
    for m in msgs {
        net.deliver(m);
    }
    // c acknowledges, so the leader commits; b still gets nothing more while its
    // acks are lost (heartbeats still flow).
    let mut later = 0;
    for _ in 0..5 {
        later += tick_and_count(&mut net, "b").1;
    }
    assert!(
        entries + later <= bound,
        "b got {} entries in total without acknowledging any",
        entries + later
    );
    assert_eq!(net.applied_commands("c").len(), 50, "a and c commit without b");
    // Once b's acknowledgements arrive again, they free the window and b catches up.
    net.heal();
    net.tick_all(5);
    assert_eq!(net.applied_commands("b").len(), 50, "{}", net.node("a").describe());
}

#[test]
fn a_message_is_cut_to_the_room_left_and_an_entry_over_the_cap_still_goes() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_inflight_bytes = CAP;
    });
    net.elect("a");
    net.tick_all(1);
    net.cut.insert((id("b"), id("a")));
    let size = entry_size(100);
    for i in 0..40 {
        net.node("a").propose(command(i, 100)).unwrap();
    }
    let msgs = net.take();
    let (_, entries, bytes) = appends_to(&msgs, "b");
    assert!(
        entries as u64 <= CAP.div_ceil(size) + 1,
        "{entries} entries ({bytes} bytes) in flight to b with a budget of {CAP}"
    );
    assert!(bytes <= CAP + size);
    for m in msgs {
        net.deliver(m);
    }
    net.heal();
    net.tick_all(5);
    assert_eq!(net.applied_commands("b").len(), 40);

    // An entry larger than the whole budget is sent once nothing is in flight...
    net.cut.insert((id("b"), id("a")));
    net.node("a").propose(command(1000, 5000)).unwrap();
    let msgs = net.take();
    assert_eq!(appends_to(&msgs, "b").1, 1, "the large entry is not stalled");
    for m in msgs {
        net.deliver(m);
    }
    // ...and nothing more follows it until it is acknowledged.
    net.node("a").propose(command(1001, 10)).unwrap();
    let msgs = net.take();
    assert_eq!(appends_to(&msgs, "b").1, 0, "the budget is used up by the large entry");
    for m in msgs {
        net.deliver(m);
    }
    net.heal();
    net.tick_all(5);
    assert_eq!(net.applied_commands("b").len(), 42);
}

#[test]
fn lost_appends_do_not_stall_the_byte_window() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_entries_per_msg = 2;
        c.max_inflight_bytes = CAP;
    });
    net.elect("a");
    net.tick_all(1);
    for i in 0..30 {
        net.node("a").propose(command(i, 100)).unwrap();
    }
    // Every append to b in this round is lost.
    let msgs = net.take();
    assert!(appends_to(&msgs, "b").0 > 0);
    for m in msgs {
        if !(m.to == id("b") && is_kind(&m, kind!(AppendEntries))) {
            net.deliver(m);
        }
    }
    net.tick_all(10);
    assert_eq!(net.applied_commands("b").len(), 30, "{}", net.node("a").describe());
}

#[test]
fn the_leader_refuses_proposals_past_the_uncommitted_cap_and_accepts_after_commit() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_uncommitted_bytes = CAP;
    });
    net.elect("a");
    net.tick_all(1);
    net.isolate("b");
    net.isolate("c");
    let size = entry_size(100);
    let fits = (CAP / size) as usize;
    for i in 0..fits {
        net.node("a").propose(command(i, 100)).unwrap();
    }
    match net.node("a").propose(command(99, 100)) {
        Err(Error::Backpressure {
            uncommitted,
            size: s,
            limit,
        }) => {
            assert_eq!((uncommitted, s, limit), (fits as u64 * size, size, CAP));
        }
        other => panic!("expected backpressure past {CAP} uncommitted bytes, got {other:?}"),
    }
    // Batches are all or nothing.
    assert!(matches!(
        net.node("a").propose_batch(vec![command(98, 1), command(97, 1)]),
        Err(Error::Backpressure { .. })
    ));
    // The leader's own entries are never refused.
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .expect("a configuration entry is not subject to the cap");
    net.take();
    // Once the followers acknowledge, the entries commit and room comes back.
    net.heal();
    net.tick_all(3);
    assert_eq!(net.applied_commands("b").len(), fits);
    for i in 0..fits {
        net.node("a")
            .propose(command(100 + i, 100))
            .expect("room again after the commit");
    }
    net.tick_all(3);
    assert_eq!(net.applied_commands("c").len(), 2 * fits);
}

#[test]
fn a_proposal_over_the_cap_goes_in_when_nothing_is_uncommitted() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_uncommitted_bytes = CAP;
    });
    net.elect("a");
    net.tick_all(1);
    net.isolate("b");
    net.isolate("c");
    net.node("a")
        .propose(command(1, 3 * CAP as usize))
        .expect("nothing is uncommitted: even a proposal over the cap is taken");
    assert!(matches!(
        net.node("a").propose(command(2, 10)),
        Err(Error::Backpressure { .. })
    ));
    net.heal();
    net.tick_all(3);
    assert_eq!(net.applied_commands("b").len(), 1);
    net.node("a").propose(command(2, 10)).unwrap();
}

#[test]
fn a_new_term_starts_with_nothing_uncommitted() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_uncommitted_bytes = CAP;
    });
    net.elect("a");
    net.tick_all(1);
    let fits = (CAP / entry_size(100)) as usize;
    // a fills its budget while cut off; b and c elect b, whose log replaces a's tail.
    net.isolate("a");
    for i in 0..fits {
        net.node("a").propose(command(i, 100)).unwrap();
    }
    assert!(net.node("a").propose(command(99, 100)).is_err());
    // a steps down (check-quorum); b or c is elected once the lease ran out.
    net.tick_all(40);
    let other = ["b", "c"]
        .into_iter()
        .find(|n| net.node(n).role() == Role::Leader)
        .expect("b or c leads");
    net.heal();
    net.tick_all(2);
    assert_eq!(net.node("a").role(), Role::Follower);
    assert!(net.node(other).propose(command(50, 100)).is_ok());
    // Leadership goes back to a: what it counted in its old term is gone.
    net.tick_all(2);
    net.node(other).transfer_leader(id("a")).unwrap();
    net.settle();
    net.tick_all(2);
    assert_eq!(net.node("a").role(), Role::Leader, "{}", net.node("a").describe());
    net.isolate("a");
    for i in 0..fits {
        net.node("a")
            .propose(command(200 + i, 100))
            .unwrap_or_else(|e| panic!("proposal {i} of a new term refused: {e} ({})", net.node("a").describe()));
    }
    assert!(net.node("a").propose(command(299, 100)).is_err());
}

#[test]
fn zero_byte_caps_are_invalid() {
    let mut c = Config::new("a");
    c.max_inflight_bytes = 0;
    assert_eq!(c.validate(), Err(ConfigError::Zero("max_inflight_bytes")));
    let mut c = Config::new("a");
    c.max_uncommitted_bytes = 0;
    assert_eq!(c.validate(), Err(ConfigError::Zero("max_uncommitted_bytes")));
    assert!(Config::new("a").validate().is_ok());
    assert!(RawNode::new(c, MemStorage::with_voters(["a"])).is_err());
}
