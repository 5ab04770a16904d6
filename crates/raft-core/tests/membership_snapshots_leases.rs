//! Membership changes by joint consensus, snapshots and compaction, lease reads.

mod harness;

use bytes::Bytes;
use harness::*;
use raft_core::*;

fn voters(net: &mut Net, n: &str) -> Vec<String> {
    net.node(n)
        .status()
        .membership
        .voters
        .iter()
        .map(|v| v.to_string())
        .collect()
}

fn leader_of(net: &mut Net) -> Option<String> {
    let names: Vec<String> = net.nodes.keys().map(|k| k.to_string()).collect();
    names.into_iter().find(|n| net.node(n).role() == Role::Leader)
}

#[test]
fn add_voter_goes_through_joint_configuration_and_leaves_it() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.add_empty_node("d", |_| {});
    let (_, idx) = net
        .node("a")
        .propose_membership_change(&[MembershipChange::AddVoter(id("d"))])
        .unwrap();
    // Takes effect on append, before commit: the leader is already joint.
    let st = net.node("a").status();
    assert!(st.membership.is_joint());
    assert!(st.commit < idx);
    net.settle();
    net.tick_all(2);
    for n in ["a", "b", "c", "d"] {
        let m = net.node(n).status().membership;
        assert!(!m.is_joint(), "{n} still joint");
        assert_eq!(m.voters.len(), 4, "{n}: {m:?}");
    }
    // The new voter counts: with a and b cut off, c and d cannot commit alone.
    net.node("a").propose(Bytes::from_static(b"x")).unwrap();
    net.settle();
    assert_eq!(net.applied_commands("d"), vec![Bytes::from_static(b"x")]);
}

#[test]
fn one_change_at_a_time_and_invalid_changes_are_typed_errors() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    let second = net
        .node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("m"))]);
    assert!(
        matches!(second, Err(Error::Membership(MembershipError::ChangeInProgress { .. }))),
        "{second:?}"
    );
    net.settle();
    let bad = [
        (
            vec![MembershipChange::Remove(id("zz"))],
            MembershipError::UnknownNode(id("zz")),
        ),
        (
            vec![MembershipChange::PromoteLearner(id("b"))],
            MembershipError::NotALearner(id("b")),
        ),
        (
            vec![
                MembershipChange::Remove(id("a")),
                MembershipChange::Remove(id("b")),
                MembershipChange::Remove(id("c")),
            ],
            MembershipError::RemovesLastVoter,
        ),
    ];
    for (changes, want) in bad {
        match net.node("a").propose_membership_change(&changes) {
            Err(Error::Membership(got)) => assert_eq!(got, want),
            other => panic!("expected {want:?}, got {other:?}"),
        }
    }
    assert!(matches!(
        net.node("b")
            .propose_membership_change(&[MembershipChange::AddLearner(id("q"))]),
        Err(Error::NotLeader { .. })
    ));
}

#[test]
fn learner_receives_the_log_but_never_counts_or_campaigns() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.add_empty_node("l", |_| {});
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    net.settle();
    net.node("a").propose(Bytes::from_static(b"v")).unwrap();
    net.settle();
    net.tick_all(1);
    assert_eq!(net.applied_commands("l"), vec![Bytes::from_static(b"v")]);
    // With b and c gone, the leader plus the learner is no quorum.
    net.isolate("b");
    net.isolate("c");
    net.cut.remove(&(id("a"), id("l")));
    net.cut.remove(&(id("l"), id("a")));
    let commit = net.node("a").status().commit;
    net.node("a").propose(Bytes::from_static(b"w")).unwrap();
    net.settle();
    assert_eq!(net.node("a").status().commit, commit, "a learner's ack must not count");
    // And a learner never campaigns, however long it waits.
    net.isolate("l");
    net.tick_all(60);
    assert_eq!(net.node("l").role(), Role::Follower);
}

#[test]
fn promote_learner_to_voter() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.add_empty_node("l", |_| {});
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    net.settle();
    net.tick_all(1);
    net.node("a")
        .propose_membership_change(&[MembershipChange::PromoteLearner(id("l"))])
        .unwrap();
    net.settle();
    net.tick_all(2);
    assert_eq!(voters(&mut net, "l"), vec!["a", "b", "c", "l"]);
    assert!(net.node("l").status().membership.learners.is_empty());
}

#[test]
fn leader_that_removes_itself_steps_down_once_c_new_commits() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.node("a")
        .propose_membership_change(&[MembershipChange::Remove(id("a"))])
        .unwrap();
    net.settle();
    net.tick_all(1);
    assert_ne!(net.node("a").role(), Role::Leader);
    assert_eq!(voters(&mut net, "b"), vec!["b", "c"]);
    net.tick_all(40);
    let leader = leader_of(&mut net).expect("b or c is elected");
    assert_ne!(leader, "a");
    // The removed node stays out: it never campaigns again.
    assert_eq!(net.node("a").role(), Role::Follower);
    net.node(&leader).propose(Bytes::from_static(b"after")).unwrap();
    net.settle();
    assert_eq!(net.applied_commands("b").last(), Some(&Bytes::from_static(b"after")));
}

#[test]
fn removed_server_cannot_disrupt_the_cluster() {
    let mut net = Net::new(&["a", "b", "c", "d"]);
    net.elect("a");
    // d is partitioned and misses its own removal.
    net.isolate("d");
    net.node("a")
        .propose_membership_change(&[MembershipChange::Remove(id("d"))])
        .unwrap();
    net.settle();
    net.tick_all(3);
    assert_eq!(voters(&mut net, "a"), vec!["a", "b", "c"]);
    let term = net.node("a").term();
    // d keeps timing out and campaigning; when it returns it must not depose a.
    net.tick_all(50);
    net.heal();
    net.tick_all(50);
    assert_eq!(net.node("a").role(), Role::Leader);
    assert_eq!(
        net.node("a").term(),
        term,
        "the removed server bumped the cluster's term"
    );
}

#[test]
fn configuration_reverts_when_its_entry_is_truncated() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.tick_all(1);
    // a appends a config entry that reaches only b... then loses leadership.
    net.cut.insert((id("a"), id("c")));
    net.cut.insert((id("a"), id("b")));
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    assert!(net.node("a").status().membership.learners.contains(&id("l")));
    net.settle();
    net.heal();
    net.isolate("a");
    net.tick_all(40);
    assert!(leader_of(&mut net).is_some_and(|l| l != "a"));
    net.heal();
    net.tick_all(5);
    // The new leader's log never had the entry: a's configuration is undone.
    assert!(
        net.node("a").status().membership.learners.is_empty(),
        "{}",
        net.node("a").describe()
    );
}

#[test]
fn compaction_then_lagging_follower_catches_up_by_chunked_snapshot() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| c.snapshot_chunk_bytes = 4);
    net.elect("a");
    let at = net.leave_behind("c", "a", 20, b"0123456789abcdefghij-state");
    assert!(net.node("a").status().first_index > 1);
    net.tick_all(3);
    let installed = &net.installed[&id("c")];
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].meta.index, at);
    assert_eq!(
        &installed[0].data[..],
        b"0123456789abcdefghij-state",
        "chunks reassembled in order"
    );
    assert_eq!(installed[0].meta.membership.voters.len(), 3);
    let (ca, cc) = (net.node("a").status(), net.node("c").status());
    assert_eq!(cc.last_index, ca.last_index);
    assert_eq!(cc.applied, ca.applied);
}

#[test]
fn lost_snapshot_chunks_are_resent_and_resumed() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| c.snapshot_chunk_bytes = 3);
    net.elect("a");
    net.leave_behind("c", "a", 5, b"abcdefghijklmnop");
    // Drop every other snapshot chunk for a while.
    let mut dropped = 0;
    for _ in 0..200 {
        for n in ["a", "b", "c"] {
            net.node(n).tick();
        }
        for m in net.take() {
            if matches!(m.body, MessageBody::InstallSnapshot(_)) && dropped < 4 && m.to == id("c") {
                dropped += 1;
                continue;
            }
            net.deliver(m);
        }
    }
    net.settle();
    assert_eq!(dropped, 4);
    assert_eq!(&net.installed[&id("c")][0].data[..], b"abcdefghijklmnop");
    assert_eq!(net.node("c").status().last_index, net.node("a").status().last_index);
}

#[test]
fn snapshot_older_than_follower_commit_is_ignored() {
    let names = ["a", "b", "c"];
    let mut s = MemStorage::with_voters(names);
    let es: Vec<Entry> = (1..=5)
        .map(|i| Entry {
            term: 1,
            index: i,
            payload: EntryPayload::Noop,
        })
        .collect();
    s.append(&es).unwrap();
    s.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 5,
    });
    let mut n = RawNode::new(config("b", 2), s).unwrap();
    let old = SnapshotChunk {
        meta: SnapshotMeta {
            index: 3,
            term: 1,
            membership: Membership::with_voters(names),
        },
        offset: 0,
        data: Bytes::from_static(b"old"),
        done: true,
        total: 3,
        crc: 0,
    };
    n.step(Message {
        group: 0,
        from: id("a"),
        to: id("b"),
        term: 1,
        body: MessageBody::InstallSnapshot(old),
    })
    .unwrap();
    let rd = n.ready();
    assert!(rd.snapshot.is_none(), "an older snapshot must never be installed");
    assert_eq!(n.status().commit, 5);
    assert!(matches!(
        &rd.persisted_messages[0].body,
        MessageBody::InstallSnapshotResponse(SnapshotResponse {
            done: true,
            last_index: 5,
            ..
        })
    ));
}

#[test]
fn create_snapshot_refuses_unapplied_or_old_indexes() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.settle();
    let applied = net.node("a").status().applied;
    assert!(matches!(
        net.node("a").create_snapshot(applied + 5, Bytes::new()),
        Err(Error::SnapshotNotApplied { .. })
    ));
    net.compact("a", b"s");
    assert!(matches!(
        net.node("a").create_snapshot(applied, Bytes::new()),
        Err(Error::SnapshotOutOfDate { .. })
    ));
}

#[test]
fn restart_after_compaction_and_membership_change_recovers_configuration() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    net.settle();
    net.tick_all(1);
    net.compact("b", b"snap");
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("m"))])
        .unwrap();
    net.settle();
    net.tick_all(1);
    net.restart("b");
    let m = net.node("b").status().membership;
    assert_eq!(
        m.learners.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
        vec!["l", "m"]
    );
}

#[test]
fn report_unreachable_and_failed_snapshot_let_replication_recover() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.tick_all(1);
    net.node("a").report_unreachable(&id("b"));
    assert_eq!(net.node("a").status().progress[&id("b")].state, ProgressState::Probe);
    net.leave_behind("c", "a", 3, b"st");
    // The transport fails to deliver the snapshot.
    let mut lost = 0;
    for _ in 0..20 {
        net.node("a").tick();
        for m in net.take() {
            if matches!(m.body, MessageBody::InstallSnapshot(_)) {
                lost += 1;
            } else {
                net.deliver(m);
            }
        }
        if lost > 0 {
            break;
        }
    }
    assert_eq!(lost, 1);
    assert!(matches!(
        net.node("a").status().progress[&id("c")].state,
        ProgressState::Snapshot { .. }
    ));
    net.node("a").report_snapshot(&id("c"), false);
    assert_eq!(net.node("a").status().progress[&id("c")].state, ProgressState::Probe);
    net.tick_all(3);
    assert_eq!(net.node("c").status().last_index, net.node("a").status().last_index);
}

#[test]
fn lease_read_served_without_a_round_trip_while_the_lease_holds() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| c.read_lease_ticks = Some(5));
    net.elect("a");
    net.tick_all(1);
    net.node("a").read_index(Bytes::from_static(b"r")).unwrap();
    let msgs = net.take();
    assert_eq!(
        count(&msgs, kind!(Heartbeat)),
        0,
        "a lease read needs no heartbeat round"
    );
    assert_eq!(net.reads[&id("a")].len(), 1);
    // Once the quorum goes silent for longer than the lease, reads need a round again.
    net.isolate("a");
    for _ in 0..6 {
        net.node("a").tick();
        net.take();
    }
    net.node("a").read_index(Bytes::from_static(b"r2")).unwrap();
    net.take();
    assert_eq!(net.reads[&id("a")].len(), 1, "an expired lease must not serve reads");
}

#[test]
fn lease_is_void_after_a_leadership_transfer() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| c.read_lease_ticks = Some(5));
    net.elect("a");
    net.tick_all(1);
    net.node("a").transfer_leader(id("b")).unwrap();
    net.cut.insert((id("b"), id("a"))); // a never hears that b won
    net.settle();
    assert_eq!(net.node("b").role(), Role::Leader);
    net.node("a").read_index(Bytes::from_static(b"stale?")).unwrap();
    net.take();
    assert!(
        net.reads.get(&id("a")).is_none_or(|r| r.is_empty()),
        "old leader served a read after TimeoutNow"
    );
}

#[test]
fn lease_config_is_validated() {
    let mut c = Config::new("a");
    c.read_lease_ticks = Some(10);
    assert!(matches!(
        c.validate(),
        Err(ConfigError::LeaseNotShorterThanElection { .. })
    ));
    c.read_lease_ticks = Some(5);
    c.check_quorum = false;
    assert_eq!(c.validate(), Err(ConfigError::LeaseNeedsCheckQuorum));
}

/// Found by the simulator: a node that joined with an empty configuration receives the
/// log from index 1, but the cluster's first configuration is in the founders'
/// snapshots, not in the log. Snapshotting before its first configuration entry gave
/// a snapshot without voters, which every node it was sent to refused (once that
/// node led, a lagging founder could never catch up). It is refused at the source.
#[test]
fn a_joined_node_cannot_snapshot_before_it_knows_a_configuration() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    for i in 0..3u8 {
        net.node("a").propose(Bytes::from(vec![i])).unwrap();
    }
    net.settle();
    net.add_empty_node("l", |_| {});
    let (_, conf) = net
        .node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    net.settle();
    net.tick_all(1);
    let l = net.node("l");
    assert!(l.status().applied >= conf, "{}", l.describe());
    let r = l.create_snapshot(conf - 1, Bytes::from_static(b"s"));
    assert!(
        matches!(r, Err(Error::SnapshotMembershipUnknown { index }) if index == conf - 1),
        "{r:?}"
    );
    // From its first configuration entry on it knows the members.
    let snap = l.create_snapshot(conf, Bytes::from_static(b"s")).unwrap();
    assert!(snap.meta.membership.is_voter(&id("a")));
    assert!(snap.meta.membership.learners.contains(&id("l")));
}
