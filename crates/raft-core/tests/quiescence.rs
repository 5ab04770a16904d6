//! Quiescence (`Config::quiesce`): an idle group stops heartbeating and stops its
//! election timers; every input wakes it; a lease never survives it; and a host's
//! `wake` after the leader went silent gets an election going.

mod harness;

use bytes::Bytes;
use harness::*;
use raft_core::*;

fn quiet_net(tweak: impl Fn(&mut Config)) -> Net {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.quiesce = true;
        tweak(c);
    });
    net.elect("a");
    net.node("a").propose(Bytes::from_static(b"x")).unwrap();
    net.settle();
    net
}

fn all_quiesced(net: &mut Net) -> bool {
    ["a", "b", "c"].iter().all(|n| net.node(n).is_quiesced())
}

/// Ticks until every node is quiesced (and returns how many ticks it took).
fn quiesce(net: &mut Net) -> usize {
    for t in 1..=10 {
        net.tick_all(1);
        if all_quiesced(net) {
            return t;
        }
    }
    panic!("the idle group did not quiesce: {}", net.node("a").describe());
}

#[test]
fn an_idle_group_quiesces_and_then_sends_nothing_at_all() {
    let mut net = quiet_net(|_| {});
    let ticks = quiesce(&mut net);
    assert!(ticks as u64 >= QUIESCE_IDLE_TICKS, "quiesced after {ticks} ticks");
    for n in ["a", "b", "c"] {
        let st = net.node(n).status();
        assert!(st.quiesced, "{n}");
        assert_eq!(st.leader, Some(id("a")), "{n}");
    }
    for _ in 0..200 {
        for n in ["a", "b", "c"] {
            net.node(n).tick();
            assert!(!net.node(n).has_ready(), "{n} has work while quiesced");
        }
        assert!(net.take().is_empty());
    }
    assert!(all_quiesced(&mut net));
    assert_eq!(net.node("a").role(), Role::Leader);
}

#[test]
fn without_the_option_a_leader_never_quiesces() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    for _ in 0..30 {
        for n in ["a", "b", "c"] {
            net.node(n).tick();
        }
        let msgs = net.take();
        assert!(!msgs.is_empty(), "the leader heartbeats every tick");
        assert_eq!(count(&msgs, |b| matches!(b, MessageBody::Quiesce(_))), 0);
        for m in msgs {
            net.deliver(m);
        }
        net.settle();
    }
    assert!(!net.node("a").is_quiesced());
}

/// Drives a single-voter node through one tick (if `tick`) and one Ready; returns
/// the Ready's report of quiescence, if its soft state changed.
fn step_single(node: &mut RawNode<MemStorage>, tick: bool) -> Option<bool> {
    if tick {
        node.tick();
    }
    if !node.has_ready() {
        return None;
    }
    let rd = node.ready();
    let store = node.storage_mut();
    store.append(&rd.entries).unwrap();
    if let Some(hs) = rd.hard_state {
        store.set_hard_state(hs);
    }
    let seen = rd.soft_state.map(|s| s.quiesced);
    node.advance();
    seen
}

#[test]
fn the_host_sees_quiescence_start_and_end_in_the_soft_state() {
    let mut c = config("a", 1);
    c.quiesce = true;
    let mut node = RawNode::new(c, MemStorage::with_voters(["a"])).unwrap();
    node.campaign();
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.extend(step_single(&mut node, true));
        seen.extend(step_single(&mut node, false));
    }
    // The campaign's role changes (not quiesced), then quiesced once idle.
    assert_eq!(seen.last(), Some(&true), "{seen:?}");
    assert_eq!(seen.iter().filter(|q| **q).count(), 1, "{seen:?}");
    assert!(node.is_quiesced());
    node.propose(Bytes::from_static(b"y")).unwrap();
    assert_eq!(step_single(&mut node, false), Some(false), "a proposal wakes it");
}

#[test]
fn a_proposal_wakes_the_leader_and_commits_everywhere() {
    let mut net = quiet_net(|_| {});
    quiesce(&mut net);
    let (_, index) = net.node("a").propose(Bytes::from_static(b"y")).unwrap();
    assert!(!net.node("a").is_quiesced());
    net.settle();
    for n in ["a", "b", "c"] {
        assert!(!net.node(n).is_quiesced(), "{n} woke");
        assert_eq!(net.node(n).commit_index(), index, "{n}");
    }
    assert_eq!(net.applied_commands("c").last().map(|c| &c[..]), Some(&b"y"[..]));
    // And it goes quiet again.
    quiesce(&mut net);
}

#[test]
fn a_read_on_a_quiesced_leader_wakes_it_and_is_answered_after_a_round() {
    let mut net = quiet_net(|_| {});
    quiesce(&mut net);
    net.node("a").read_index(Bytes::from_static(b"r")).unwrap();
    net.settle();
    let commit = net.node("a").commit_index();
    let reads = &net.reads[&id("a")];
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].index, commit);
}

/// The lease read right after waking: with the lease kept across quiescence (the
/// planted bug), the leader answers at once, on acknowledgements from before its
/// ticks stopped; correctly, it must first hear from a quorum again.
fn read_right_after_waking(bug: bool) -> (usize, Vec<Message>) {
    let mut net = quiet_net(|c| {
        c.read_lease_ticks = Some(8);
        c.bugs.keep_lease_across_quiescence = bug;
    });
    // A lease read while awake needs no round: the lease is live.
    net.tick_all(1);
    net.node("a").read_index(Bytes::from_static(b"warm")).unwrap();
    let _ = net.take();
    assert_eq!(net.reads[&id("a")].len(), 1, "a fresh lease serves at once");
    net.settle();
    quiesce(&mut net);
    // Long quiet: the followers' host may have elected someone else meanwhile; the
    // leader's own ticks did not count any of it.
    net.isolate("a");
    net.node("a").read_index(Bytes::from_static(b"cold")).unwrap();
    let msgs = net.take();
    (net.reads[&id("a")].len() - 1, msgs)
}

#[test]
fn a_lease_read_right_after_waking_waits_for_a_quorum_round() {
    let (served, msgs) = read_right_after_waking(false);
    assert_eq!(served, 0, "the lease must not survive quiescence");
    // The heartbeats of waking, and those of the read's own round.
    assert_eq!(
        count(&msgs, |b| matches!(b, MessageBody::Heartbeat(_))),
        4,
        "waking heartbeats at once: {msgs:?}"
    );
}

#[test]
fn planted_bug_a_lease_kept_across_quiescence_serves_a_stale_read() {
    let (served, _) = read_right_after_waking(true);
    assert_eq!(served, 1, "the planted bug serves the read from the stale lease");
}

#[test]
fn woken_followers_elect_a_new_leader_when_the_quiesced_leader_is_gone() {
    let mut net = quiet_net(|_| {});
    quiesce(&mut net);
    net.isolate("a");
    // Without the host's wake nothing happens: quiesced timers do not run.
    net.tick_all(50);
    assert_eq!(net.node("b").role(), Role::Follower);
    assert!(net.node("b").is_quiesced());
    // The host has not heard a's liveness beats for an election timeout.
    net.node("b").wake();
    net.node("c").wake();
    let mut ticks = 0;
    while !["b", "c"].iter().any(|n| net.node(n).role() == Role::Leader) {
        net.tick_all(1);
        ticks += 1;
        assert!(ticks < 60, "no new leader");
    }
    // At least one election timeout: a woken follower still respects its leader's
    // lease for that long.
    assert!(ticks >= 10, "elected after {ticks} ticks");
    let leader = if net.node("b").role() == Role::Leader { "b" } else { "c" };
    let (_, index) = net.node(leader).propose(Bytes::from_static(b"z")).unwrap();
    net.settle();
    assert_eq!(net.node("b").commit_index(), index);
    assert_eq!(net.node("c").commit_index(), index);
}

#[test]
fn a_woken_leader_does_not_step_down_on_stale_check_quorum_marks() {
    let mut net = quiet_net(|_| {});
    quiesce(&mut net);
    let term = net.node("a").term();
    net.node("a").wake();
    net.tick_all(25);
    assert_eq!(net.node("a").role(), Role::Leader);
    assert_eq!(net.node("a").term(), term);
    // And a woken leader that hears nobody steps down after one window.
    quiesce(&mut net);
    net.isolate("a");
    net.node("a").wake();
    net.tick_all(9);
    assert_eq!(net.node("a").role(), Role::Leader, "a new window starts at waking");
    net.tick_all(2);
    assert_eq!(net.node("a").role(), Role::Follower);
}

#[test]
fn a_follower_that_restarts_while_the_group_is_quiesced_rejoins_without_a_new_election() {
    let mut net = quiet_net(|_| {});
    quiesce(&mut net);
    let term = net.node("a").term();
    net.restart("c");
    assert!(!net.node("c").is_quiesced(), "a restart forgets quiescence");
    let mut ticks = 0;
    while net.node("c").leader() != Some(&id("a")) {
        net.tick_all(1);
        ticks += 1;
        assert!(ticks < 60, "c never found the leader: {}", net.node("c").describe());
    }
    assert_eq!(net.node("a").role(), Role::Leader);
    assert_eq!(net.node("a").term(), term, "no needless leader change");
    quiesce(&mut net);
}

#[test]
fn a_follower_whose_log_differs_refuses_to_quiesce_and_wakes_the_leader() {
    let mut net = quiet_net(|_| {});
    quiesce(&mut net);
    let st = net.node("a").status();
    let bad = Message {
        group: 0,
        from: id("a"),
        to: id("b"),
        term: st.term,
        body: MessageBody::Quiesce(Quiesce {
            commit: st.commit,
            last_index: st.last_index + 1,
            last_term: st.term,
            read_round: 0,
        }),
    };
    net.deliver(bad);
    assert!(!net.node("b").is_quiesced());
    let msgs = net.take();
    assert!(
        msgs.iter()
            .any(|m| m.to == id("a") && matches!(m.body, MessageBody::HeartbeatResponse(_))),
        "{msgs:?}"
    );
    for m in msgs {
        net.deliver(m);
    }
    assert!(!net.node("a").is_quiesced(), "the answer wakes the leader");
    net.settle();
    quiesce(&mut net);
}

#[test]
fn a_lagging_follower_keeps_the_group_awake_until_it_catches_up() {
    let mut net = quiet_net(|_| {});
    net.isolate("c");
    net.node("a").propose(Bytes::from_static(b"y")).unwrap();
    net.tick_all(20);
    assert!(!net.node("a").is_quiesced(), "c does not match the leader's log");
    net.heal();
    quiesce(&mut net);
    assert_eq!(net.node("c").commit_index(), net.node("a").commit_index());
}
