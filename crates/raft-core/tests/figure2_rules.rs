//! Focused tests, one rule of Figure 2 of the Raft paper (and the practice since) each.

mod harness;

use bytes::Bytes;
use harness::*;
use raft_core::*;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from(format!("c{index}"))),
    }
}

/// A storage with the given entry terms (index 1..) and hard-state term.
fn store_with(names: &[&str], terms: &[u64], term: u64) -> MemStorage {
    let mut s = MemStorage::with_voters(names.iter().copied());
    let es: Vec<Entry> = terms.iter().enumerate().map(|(i, t)| entry(i as u64 + 1, *t)).collect();
    s.append(&es).unwrap();
    s.set_hard_state(HardState {
        term,
        vote: None,
        commit: 0,
    });
    s
}

fn msg(from: &str, to: &str, term: u64, body: MessageBody) -> Message {
    Message {
        group: 0,
        from: id(from),
        to: id(to),
        term,
        body,
    }
}

fn append(prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> MessageBody {
    MessageBody::AppendEntries(AppendRequest {
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        commit,
    })
}

fn vote_req(pre: bool, last: (u64, u64)) -> MessageBody {
    MessageBody::RequestVote(VoteRequest {
        pre_vote: pre,
        last_log_index: last.0,
        last_log_term: last.1,
        leadership_transfer: false,
    })
}

fn granted(m: &Message) -> bool {
    matches!(
        m.body,
        MessageBody::RequestVoteResponse(VoteResponse { granted: true, .. })
    )
}

fn single(names: &[&str], me: &str, store: MemStorage) -> RawNode<MemStorage> {
    let _ = names;
    RawNode::new(config(me, 1), store).unwrap()
}

#[test]
fn s5_2_follower_times_out_and_pre_votes_without_bumping_term() {
    let mut net = Net::new(&["a", "b", "c"]);
    let mut ticks = 0;
    while net.node("a").role() == Role::Follower {
        net.node("a").tick();
        ticks += 1;
        assert!(ticks < 20, "no campaign within 2 * election_tick");
    }
    assert!(
        ticks >= 10,
        "campaigned after {ticks} ticks, before the election timeout"
    );
    assert_eq!(net.node("a").role(), Role::PreCandidate);
    assert_eq!(net.node("a").term(), 0, "pre-vote must not bump the term");
    let msgs = net.take();
    assert_eq!(count(&msgs, kind!(RequestVote)), 2);
    assert!(msgs
        .iter()
        .all(|m| m.term == 1 && matches!(&m.body, MessageBody::RequestVote(v) if v.pre_vote)));
}

#[test]
fn s5_2_election_with_pre_vote_elects_one_leader_and_commits_a_noop() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    assert_eq!(net.node("a").term(), 1);
    net.tick_all(1);
    for n in ["a", "b", "c"] {
        assert_eq!(net.node(n).status().commit, 1, "{}", net.node(n).describe());
        assert_eq!(net.node(n).leader(), Some(&id("a")));
    }
    assert_eq!(net.node("b").role(), Role::Follower);
}

#[test]
fn s5_2_at_most_one_vote_per_term_but_repeats_are_regranted() {
    let names = ["a", "b", "c"];
    let mut n = single(&names, "a", MemStorage::with_voters(names));
    n.step(msg("b", "a", 1, vote_req(false, (0, 0)))).unwrap();
    n.step(msg("c", "a", 1, vote_req(false, (0, 0)))).unwrap();
    n.step(msg("b", "a", 1, vote_req(false, (0, 0)))).unwrap();
    let rd = n.ready();
    assert!(
        rd.messages.iter().all(|m| !is_kind(m, kind!(RequestVoteResponse))),
        "votes must wait for persistence"
    );
    let votes = rd.persisted_messages;
    assert_eq!(votes.len(), 3);
    assert!(granted(&votes[0]) && !granted(&votes[1]) && granted(&votes[2]));
    assert_eq!(rd.hard_state.unwrap().vote, Some(id("b")));
}

#[test]
fn s5_4_1_vote_denied_to_candidate_with_less_up_to_date_log() {
    let names = ["a", "b", "c"];
    let mut n = single(&names, "a", store_with(&names, &[1, 2, 2], 2));
    // Lower last term, longer log: denied.
    n.step(msg("b", "a", 3, vote_req(false, (5, 1)))).unwrap();
    // Same last term, shorter log: denied.
    n.step(msg("c", "a", 4, vote_req(false, (2, 2)))).unwrap();
    let rd = n.ready();
    assert_eq!(rd.persisted_messages.len(), 2);
    assert!(rd.persisted_messages.iter().all(|m| !granted(m)));
    assert_eq!(n.term(), 4, "a higher term is adopted even when the vote is denied");
    // Same last term, same length: granted.
    n.advance();
    n.step(msg("c", "a", 5, vote_req(false, (3, 2)))).unwrap();
    assert!(granted(&n.ready().persisted_messages[0]));
}

#[test]
fn s5_1_higher_term_turns_leader_into_follower() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.node("a").step(msg("b", "a", 7, append((0, 0), vec![], 0))).unwrap();
    assert_eq!(net.node("a").role(), Role::Follower);
    assert_eq!(net.node("a").term(), 7);
    assert_eq!(net.node("a").leader(), Some(&id("b")));
}

#[test]
fn s5_1_stale_term_append_is_answered_with_current_term() {
    let names = ["a", "b", "c"];
    let mut n = single(&names, "a", store_with(&names, &[1], 5));
    n.step(msg("b", "a", 3, append((1, 1), vec![entry(2, 3)], 2))).unwrap();
    let rd = n.ready();
    assert_eq!(rd.messages.len(), 1);
    assert_eq!(rd.messages[0].term, 5);
    assert_eq!(
        rd.messages[0].body,
        MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm)
    );
    assert!(rd.entries.is_empty(), "a stale leader's entries must not be taken");
}

#[test]
fn s5_3_append_rejected_when_prev_does_not_match_with_a_term_hint() {
    let names = ["a", "b", "c"];
    // Log terms: 1 1 2 2 2; the leader (term 4) believes index 5 has term 3.
    let mut n = single(&names, "a", store_with(&names, &[1, 1, 2, 2, 2], 3));
    n.step(msg("b", "a", 4, append((5, 3), vec![entry(6, 4)], 0))).unwrap();
    let rd = n.ready();
    let resp = &rd.persisted_messages[0].body;
    assert_eq!(
        resp,
        &MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
            rejected_index: 5,
            hint_index: 5,
            hint_term: 2
        })
    );
    assert!(rd.entries.is_empty());
}

#[test]
fn s5_3_conflicting_suffix_replaced_and_commit_capped_at_last_new_entry() {
    let names = ["a", "b", "c"];
    let mut n = single(&names, "a", store_with(&names, &[1, 1, 2, 2], 2));
    // Leader of term 3 has 1 1 3 at indexes 1..=3 and commit 10.
    n.step(msg("b", "a", 3, append((2, 1), vec![entry(3, 3)], 10))).unwrap();
    let rd = n.ready();
    assert_eq!(rd.entries, vec![entry(3, 3)]);
    assert_eq!(
        rd.hard_state.as_ref().unwrap().commit,
        3,
        "commit = min(leader commit, last new entry)"
    );
    assert_eq!(
        rd.persisted_messages[0].body,
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index: 3 })
    );
    n.storage_mut().append(&rd.entries).unwrap();
    n.advance();
    assert_eq!(n.status().last_index, 3, "entry 4 of the old term was truncated");
}

#[test]
fn s5_3_duplicate_append_does_not_truncate_newer_entries() {
    let names = ["a", "b", "c"];
    let mut n = single(&names, "a", store_with(&names, &[1, 1, 1], 1));
    // A delayed duplicate covering only index 2 must not cut index 3.
    n.step(msg("b", "a", 1, append((1, 1), vec![entry(2, 1)], 0))).unwrap();
    let rd = n.ready();
    assert!(rd.entries.is_empty());
    assert_eq!(n.status().last_index, 3);
}

/// Figure 8: an entry from a previous term replicated on a majority is not committed
/// by counting; it commits only together with an entry of the current term.
#[test]
fn figure_8_previous_term_entry_not_committed_by_counting() {
    let (leader, committed_early) = figure_8(false);
    assert_eq!(committed_early, 0, "{}", leader.describe());
    assert_eq!(
        leader.status().commit,
        3,
        "committing the term-4 entry commits index 2 with it"
    );
}

/// The same scenario with the Figure 8 bug planted: the test above would fail.
#[test]
fn figure_8_test_catches_the_planted_counting_bug() {
    let (_, committed_early) = figure_8(true);
    assert_eq!(committed_early, 2);
}

fn figure_8(bug: bool) -> (RawNode<MemStorage>, u64) {
    let names = ["s1", "s2", "s3", "s4", "s5"];
    let mut c = config("s1", 1);
    c.bugs.commit_previous_term_by_counting = bug;
    let mut s1 = RawNode::new(c, store_with(&names, &[1, 2], 3)).unwrap();
    s1.campaign();
    for phase in 0..2 {
        let rd = s1.ready();
        for m in rd.messages.iter().filter(|m| is_kind(m, kind!(RequestVote))).take(2) {
            let to = m.to.as_str().to_string();
            let body = MessageBody::RequestVoteResponse(VoteResponse {
                pre_vote: phase == 0,
                granted: true,
            });
            s1.step(msg(&to, "s1", m.term, body)).unwrap();
        }
        s1.storage_mut().append(&rd.entries).unwrap();
        if let Some(hs) = rd.hard_state {
            s1.storage_mut().set_hard_state(hs);
        }
        s1.advance();
    }
    assert_eq!(s1.role(), Role::Leader);
    assert_eq!(s1.term(), 4);
    let rd = s1.ready();
    s1.storage_mut().append(&rd.entries).unwrap();
    s1.advance();
    assert_eq!(s1.status().last_index, 3, "the leader's no-op of term 4");
    // s2 and s3 hold index 2 (term 2): a majority with s1, but of a previous term.
    let ok = |m| MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index: m });
    s1.step(msg("s2", "s1", 4, ok(2))).unwrap();
    s1.step(msg("s3", "s1", 4, ok(2))).unwrap();
    let committed_early = s1.status().commit;
    s1.step(msg("s2", "s1", 4, ok(3))).unwrap();
    s1.step(msg("s3", "s1", 4, ok(3))).unwrap();
    (s1, committed_early)
}

#[test]
fn s5_3_fast_backtracking_skips_a_whole_conflicting_term() {
    let names = ["a", "b", "c"];
    // b has a long tail of term-2 entries the leader never had.
    let b_terms: Vec<u64> = std::iter::once(1).chain(std::iter::repeat_n(2, 50)).collect();
    let mut net = Net::new(&names);
    *net.node("b") = RawNode::new(config("b", 2), store_with(&names, &b_terms, 2)).unwrap();
    *net.node("a") = RawNode::new(config("a", 1), store_with(&names, &[1, 3, 3], 3)).unwrap();
    *net.node("c") = RawNode::new(config("c", 3), store_with(&names, &[1, 3, 3], 3)).unwrap();
    net.node("a").campaign();
    let mut rounds_to_b = 0;
    for _ in 0..100 {
        let msgs = net.take();
        if msgs.is_empty() {
            break;
        }
        rounds_to_b += msgs
            .iter()
            .filter(|m| m.to == id("b") && is_kind(m, kind!(AppendEntries)))
            .count();
        for m in msgs {
            net.deliver(m);
        }
    }
    assert_eq!(net.node("a").role(), Role::Leader);
    assert_eq!(net.log("b"), net.log("a"));
    assert!(
        rounds_to_b <= 4,
        "backtracking took {rounds_to_b} appends for a 50-entry conflict"
    );
}

#[test]
fn flow_control_bounds_batches_and_the_inflight_window() {
    let mut net = Net::with_config(&["a", "b", "c"], |c| {
        c.max_entries_per_msg = 4;
        c.max_inflight_msgs = 3;
    });
    net.elect("a");
    net.tick_all(1);
    for i in 0..100u32 {
        net.node("a").propose(Bytes::from(i.to_be_bytes().to_vec())).unwrap();
    }
    let msgs = net.take();
    let to_b: Vec<&Message> = msgs
        .iter()
        .filter(|m| m.to == id("b") && is_kind(m, kind!(AppendEntries)))
        .collect();
    assert_eq!(to_b.len(), 3, "the in-flight window caps messages per follower");
    for m in &to_b {
        let MessageBody::AppendEntries(a) = &m.body else {
            unreachable!()
        };
        assert_eq!(a.entries.len(), 4, "batches are capped at max_entries_per_msg");
    }
    for m in msgs {
        net.deliver(m);
    }
    net.settle();
    assert_eq!(
        net.applied_commands("c").len(),
        100,
        "replication resumes as acks free the window"
    );
}

#[test]
fn s5_4_proposal_on_follower_is_refused_with_leader_hint() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    match net.node("b").propose(Bytes::from_static(b"x")) {
        Err(Error::NotLeader { leader_hint }) => assert_eq!(leader_hint, Some(id("a"))),
        other => panic!("expected NotLeader, got {other:?}"),
    }
}

#[test]
fn check_quorum_isolated_leader_steps_down_and_majority_elects_another() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.isolate("a");
    net.tick_all(40);
    assert_ne!(net.node("a").role(), Role::Leader, "{}", net.node("a").describe());
    let leaders: Vec<_> = ["b", "c"]
        .into_iter()
        .filter(|n| net.node(n).role() == Role::Leader)
        .collect();
    assert_eq!(leaders.len(), 1);
    net.heal();
    net.tick_all(5);
    assert_eq!(net.node("a").leader(), Some(&id(leaders[0])));
}

#[test]
fn check_quorum_vote_request_within_leader_lease_is_ignored() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.tick_all(1);
    let last = net.node("c").status().last_index;
    net.node("b")
        .step(msg("c", "b", 9, vote_req(false, (last, 1))))
        .unwrap();
    assert_eq!(
        net.node("b").term(),
        1,
        "a node that hears a leader ignores disruptive votes"
    );
    assert!(net.take().iter().all(|m| !is_kind(m, kind!(RequestVoteResponse))));
}

#[test]
fn pre_vote_partitioned_node_does_not_inflate_terms() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.isolate("c");
    net.tick_all(100);
    assert_eq!(net.node("c").term(), 1, "pre-vote keeps a partitioned node's term");
    net.heal();
    net.tick_all(5);
    assert_eq!(
        net.node("a").role(),
        Role::Leader,
        "the returning node did not disrupt the leader"
    );
}

#[test]
fn leadership_transfer_catches_up_target_then_hands_over() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.cut.insert((id("a"), id("c")));
    for i in 0..5u8 {
        net.node("a").propose(Bytes::from(vec![i])).unwrap();
    }
    net.settle();
    net.heal();
    net.node("a").transfer_leader(id("c")).unwrap();
    assert!(matches!(
        net.node("a").propose(Bytes::from_static(b"x")),
        Err(Error::LeadershipTransferInProgress { .. })
    ));
    net.settle();
    assert_eq!(net.node("c").role(), Role::Leader, "{}", net.node("c").describe());
    assert_eq!(net.node("c").term(), 2);
    assert_eq!(net.node("a").role(), Role::Follower);
    net.tick_all(2);
    assert_eq!(net.applied_commands("c").len(), 5);
}

#[test]
fn leadership_transfer_to_unknown_node_is_a_typed_error() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    assert!(matches!(
        net.node("a").transfer_leader(id("zz")),
        Err(Error::UnknownNode(_))
    ));
    assert!(matches!(
        net.node("b").transfer_leader(id("c")),
        Err(Error::NotLeader { .. })
    ));
}

#[test]
fn read_index_on_leader_waits_for_a_heartbeat_quorum() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.tick_all(1);
    net.node("a").propose(Bytes::from_static(b"w")).unwrap();
    net.settle();
    let commit = net.node("a").status().commit;
    net.node("a").read_index(Bytes::from_static(b"r1")).unwrap();
    let msgs = net.take();
    assert!(
        net.reads.get(&id("a")).is_none_or(|r| r.is_empty()),
        "released before confirmation"
    );
    assert_eq!(count(&msgs, kind!(Heartbeat)), 2);
    for m in msgs {
        net.deliver(m);
    }
    net.settle();
    let reads = &net.reads[&id("a")];
    assert_eq!(
        reads,
        &vec![ReadState {
            context: Bytes::from_static(b"r1"),
            index: commit
        }]
    );
}

#[test]
fn read_index_on_isolated_leader_is_never_released() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.tick_all(1);
    net.isolate("a");
    net.node("a").read_index(Bytes::from_static(b"r")).unwrap();
    net.tick_all(3);
    assert!(net.reads.get(&id("a")).is_none_or(|r| r.is_empty()));
}

#[test]
fn read_index_from_follower_is_forwarded_to_the_leader() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.tick_all(1);
    net.node("a").propose(Bytes::from_static(b"w")).unwrap();
    net.settle();
    net.node("b").read_index(Bytes::from_static(b"f")).unwrap();
    net.settle();
    let commit = net.node("a").status().commit;
    assert_eq!(
        net.reads[&id("b")],
        vec![ReadState {
            context: Bytes::from_static(b"f"),
            index: commit
        }]
    );
}

#[test]
fn restart_keeps_term_vote_and_log() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    net.node("a").propose(Bytes::from_static(b"x")).unwrap();
    net.settle();
    let before = net.node("b").status();
    let store = net.nodes.remove(&id("b")).unwrap().into_storage();
    let b = RawNode::new(config("b", 2), store).unwrap();
    let after = b.status();
    assert_eq!(
        (after.term, after.vote.clone(), after.last_index),
        (before.term, before.vote, before.last_index)
    );
    assert_eq!(after.role, Role::Follower);
    assert!(after.commit <= before.commit);
}

#[test]
fn misdelivered_and_nonsense_messages_are_refused_without_panicking() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.elect("a");
    let wrong = msg("b", "c", 1, MessageBody::TimeoutNow);
    assert!(matches!(net.node("a").step(wrong), Err(Error::Misdelivered { .. })));
    let mut other_group = msg("b", "a", 1, MessageBody::TimeoutNow);
    other_group.group = 7;
    assert!(net.node("a").step(other_group).is_err());
    // Responses nobody asked for, from members and strangers, in every role.
    let junk = [
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index: 1_000_000 }),
        MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
            rejected_index: u64::MAX,
            hint_index: u64::MAX,
            hint_term: u64::MAX,
        }),
        MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: u64::MAX }),
        MessageBody::RequestVoteResponse(VoteResponse {
            pre_vote: false,
            granted: true,
        }),
        MessageBody::ReadIndexResponse(ReadIndexResponse {
            context: Bytes::new(),
            index: 99,
        }),
        append((u64::MAX - 1, 0), vec![], u64::MAX),
    ];
    for to in ["a", "b"] {
        for from in ["b", "c", "stranger"] {
            if from == to {
                continue;
            }
            for body in junk.iter().cloned() {
                let term = net.node(to).term();
                // Indexes near u64::MAX are refused at the step boundary (see
                // hostile_input.rs); the rest are ignored by the rules.
                match net.node(to).step(msg(from, to, term, body)) {
                    Ok(()) | Err(Error::Refused { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    net.settle();
    let st = net.node("a").status();
    assert!(st.commit <= st.last_index);
}
