//! Hostile and corrupt input (issue 13): a message a peer with the cluster token could
//! forge, or a bit flip could make, never panics a node, bricks it or leaves the
//! cluster without a leader. Terms and indexes beyond the bounds of
//! `raft_core::bounds` are refused with a typed error; jumps up to the bounds recover.

mod harness;

use bytes::Bytes;
use harness::*;
use proptest::prelude::*;
use raft_core::*;

const NAMES: [&str; 3] = ["a", "b", "c"];

fn from_evil(to: &str, term: u64, body: MessageBody) -> Message {
    Message {
        group: 0,
        from: id("evil"),
        to: id(to),
        term,
        body,
    }
}

fn heartbeat(commit: u64) -> MessageBody {
    MessageBody::Heartbeat(Heartbeat { commit, read_round: 0 })
}

fn snapshot(index: u64, term: u64, membership: Membership) -> MessageBody {
    MessageBody::InstallSnapshot(SnapshotChunk {
        meta: SnapshotMeta {
            index,
            term,
            membership,
        },
        offset: 0,
        data: Bytes::from_static(b"garbage"),
        done: true,
        total: 7,
        crc: crc32fast::hash(b"garbage"),
    })
}

/// The one leader of the highest term, if there is one.
fn leader(net: &Net) -> Option<NodeId> {
    let top = net.nodes.values().map(|n| n.term()).max()?;
    let leaders: Vec<_> = net
        .nodes
        .values()
        .filter(|n| n.role() == Role::Leader && n.term() == top)
        .map(|n| n.id().clone())
        .collect();
    (leaders.len() == 1).then(|| leaders[0].clone())
}

/// Ticks until there is one leader that every node follows; panics after `max_ticks`.
/// Ticking delivers with `Net::deliver`, which unwraps `step`: the honest traffic after
/// a jump is never refused.
fn wait_for_leader(net: &mut Net, max_ticks: usize) -> NodeId {
    for _ in 0..max_ticks {
        net.tick_all(1);
        if let Some(l) = leader(net) {
            if net.nodes.values().all(|n| n.leader() == Some(&l)) {
                return l;
            }
        }
    }
    let states: Vec<String> = net.nodes.values().map(|n| n.describe()).collect();
    panic!("no leader within {max_ticks} ticks:\n{}", states.join("\n"));
}

/// Proposes `cmd` on the leader and checks every node applies it after `before`.
fn commit_everywhere(net: &mut Net, leader: &NodeId, cmd: &'static [u8], before: &[&'static [u8]]) {
    net.node(leader.as_str()).propose(Bytes::from_static(cmd)).unwrap();
    net.settle();
    let want: Vec<Bytes> = before.iter().chain([&cmd]).map(|c| Bytes::from_static(c)).collect();
    for n in NAMES {
        assert_eq!(net.applied_commands(n), want, "{}", net.node(n).describe());
    }
}

#[test]
fn heartbeat_with_term_u64_max_from_an_unknown_sender_is_refused_and_changes_nothing() {
    let mut net = Net::new(&NAMES);
    net.elect("a");
    commit_everywhere(&mut net, &id("a"), b"before", &[]);
    for n in NAMES {
        let before = net.node(n).describe();
        let r = net.node(n).step(from_evil(n, u64::MAX, heartbeat(u64::MAX)));
        assert!(
            matches!(
                r,
                Err(Error::Refused {
                    reason: Refusal::TermTooHigh { term: u64::MAX, .. },
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(net.node(n).describe(), before, "a refused message changed the node");
        assert!(!net.node(n).has_ready() || n == "a");
    }
    // Time passes: no overflow on the next campaign, and the leader stays.
    net.tick_all(50);
    assert_eq!(leader(&net), Some(id("a")));
    commit_everywhere(&mut net, &id("a"), b"after", &[b"before"]);
}

#[test]
fn term_jumps_to_the_bound_recover_a_leader_and_keep_committed_entries() {
    let mut net = Net::new(&NAMES);
    net.elect("a");
    commit_everywhere(&mut net, &id("a"), b"1", &[]);
    // A forged heartbeat at the highest term a node accepts, twice in a row (the
    // second from past the bound), then one beyond it.
    let mut committed: Vec<&'static [u8]> = vec![b"1"];
    for cmd in [b"2" as &'static [u8], b"3"] {
        let term = net.nodes.values().map(|n| n.term_limit()).min().unwrap();
        for n in NAMES {
            net.node(n).step(from_evil(n, term, heartbeat(0))).unwrap();
            assert_eq!(net.node(n).term(), term);
            assert_eq!(net.node(n).leader(), Some(&id("evil")));
        }
        net.settle();
        // Within two election timeouts of the lease expiring (3 * election_tick).
        let l = wait_for_leader(&mut net, 30);
        assert!(net.nodes.values().all(|n| n.term() > term));
        assert!(net.node(l.as_str()).term() > term);
        commit_everywhere(&mut net, &l, cmd, &committed);
        committed.push(cmd);
    }
    let top = net.nodes.values().map(|n| n.term()).max().unwrap();
    assert!(top > MAX_TERM + TERM_HEADROOM);
    let l = leader(&net).unwrap();
    for n in NAMES {
        let beyond = net.node(n).term_limit() + 1;
        let r = net.node(n).step(from_evil(n, beyond, heartbeat(0)));
        assert!(matches!(r, Err(Error::Refused { .. })), "{r:?}");
    }
    net.tick_all(30);
    assert_eq!(leader(&net), Some(l.clone()));
    commit_everywhere(&mut net, &l, b"4", &committed);
}

#[test]
fn install_snapshot_at_u64_max_is_refused_and_the_follower_keeps_its_log() {
    let mut net = Net::new(&NAMES);
    net.elect("a");
    commit_everywhere(&mut net, &id("a"), b"x", &[]);
    let voters = Membership::with_voters(NAMES);
    let term = net.node("b").term();
    let cases = [
        (snapshot(u64::MAX, term, voters.clone()), SnapshotProblem::IndexTooHigh),
        (
            snapshot(MAX_SNAPSHOT_INDEX + 1, term, voters.clone()),
            SnapshotProblem::IndexTooHigh,
        ),
        (snapshot(100, 0, voters.clone()), SnapshotProblem::ZeroTerm),
        (snapshot(100, term, Membership::default()), SnapshotProblem::NoVoters),
        (snapshot(0, term, voters.clone()), SnapshotProblem::ZeroIndex),
    ];
    for (body, problem) in cases {
        let before = net.node("b").describe();
        let r = net.node("b").step(from_evil("b", term, body));
        assert!(
            matches!(&r, Err(Error::Refused { reason: Refusal::BadSnapshot { problem: p, .. }, .. }) if *p == problem),
            "{r:?}"
        );
        assert_eq!(net.node("b").describe(), before);
    }
    // A snapshot's term cannot be later than its sender's.
    let r = net
        .node("b")
        .step(from_evil("b", term, snapshot(100, term + 1, voters)));
    assert!(
        matches!(
            r,
            Err(Error::Refused {
                reason: Refusal::TermBeyondMessage { .. },
                ..
            })
        ),
        "{r:?}"
    );
    net.tick_all(30);
    assert_eq!(leader(&net), Some(id("a")));
    commit_everywhere(&mut net, &id("a"), b"y", &[b"x"]);
}

/// A storage that reports a log that cannot exist (first index 0, as a corrupt data
/// directory once made the file storage do).
struct ImpossibleStorage(MemStorage, u64, u64);

impl Storage for ImpossibleStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.0.initial_state()
    }
    fn entries(&self, low: LogIndex, high: LogIndex, max: u64) -> Result<Vec<Entry>, StorageError> {
        self.0.entries(low, high, max)
    }
    fn term(&self, index: LogIndex) -> Result<Term, StorageError> {
        self.0.term(index)
    }
    fn first_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.1)
    }
    fn last_index(&self) -> Result<LogIndex, StorageError> {
        Ok(self.2)
    }
    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.0.snapshot()
    }
}

#[test]
fn a_storage_reporting_an_impossible_log_is_refused_at_start() {
    for (first, last) in [(0, u64::MAX), (0, 0), (5, 2), (1, u64::MAX)] {
        let store = ImpossibleStorage(MemStorage::with_voters(["a"]), first, last);
        let r = RawNode::new(Config::new("a"), store);
        assert!(
            matches!(r, Err(Error::Storage(StorageError::ImpossibleLog { .. }))),
            "{first}..{last}: {:?}",
            r.err()
        );
    }
}

#[test]
fn a_log_at_the_index_limit_refuses_proposals_with_log_full() {
    let mut store = MemStorage::with_voters(["a"]);
    store.apply_snapshot(Snapshot {
        meta: SnapshotMeta {
            index: MAX_INDEX - 2,
            term: 1,
            membership: Membership::with_voters(["a"]),
        },
        data: Bytes::new(),
    });
    let mut node = RawNode::new(Config::new("a"), store).unwrap();
    node.campaign();
    // It counts its own vote once the vote is persisted.
    let rd = node.ready();
    node.storage_mut().set_hard_state(rd.hard_state.expect("the vote"));
    node.advance();
    assert_eq!(node.role(), Role::Leader);
    // The no-op took MAX_INDEX - 1; one more entry fits, two do not.
    let r = node.propose_batch(vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
    assert!(
        matches!(r, Err(Error::LogFull { last_index }) if last_index == MAX_INDEX - 1),
        "{r:?}"
    );
    assert_eq!(node.propose(Bytes::from_static(b"1")).unwrap().1, MAX_INDEX);
    assert!(matches!(
        node.propose(Bytes::from_static(b"2")),
        Err(Error::LogFull { .. })
    ));
}

/// A number a forger would pick: small, near a bound, or near `u64::MAX`.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..8u64,
        (0..3u64).prop_map(|d| MAX_TERM + TERM_HEADROOM - 1 + d),
        (0..3u64).prop_map(|d| MAX_SNAPSHOT_INDEX - 1 + d),
        (0..3u64).prop_map(|d| MAX_INDEX - 1 + d),
        (0..4u64).prop_map(|d| u64::MAX - d),
    ]
}

/// A commit index a forger would pick: 0 or beyond the bound. (A forged commit within
/// the bound makes a follower commit whatever its log holds: Raft trusts its leader
/// for that, and no bound can tell; so it is not what this test is about.)
fn commit() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        (1..3u64).prop_map(|d| MAX_INDEX + d),
        (0..2u64).prop_map(|d| u64::MAX - d)
    ]
}

/// A snapshot index a forger would pick: 0, or near a bound. (A forged snapshot just
/// ahead of a follower's commit index replaces its committed log, so it can never agree
/// with the leader again; Raft trusts its leader for that too.)
fn snapshot_index() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        (0..3u64).prop_map(|d| MAX_SNAPSHOT_INDEX - 1 + d),
        (0..3u64).prop_map(|d| MAX_INDEX - 1 + d),
        (0..2u64).prop_map(|d| u64::MAX - d),
    ]
}

fn hostile_body() -> impl Strategy<Value = MessageBody> {
    let n = number;
    prop_oneof![
        (any::<bool>(), n(), n()).prop_map(|(pre_vote, i, t)| MessageBody::RequestVote(VoteRequest {
            pre_vote,
            last_log_index: i,
            last_log_term: t,
            leadership_transfer: false,
        })),
        (any::<bool>(), any::<bool>())
            .prop_map(|(pre_vote, granted)| MessageBody::RequestVoteResponse(VoteResponse { pre_vote, granted })),
        (n(), n(), commit(), n(), 0..3usize).prop_map(|(pi, pt, commit, t, k)| {
            let entries = (0..k)
                .map(|i| Entry {
                    term: t,
                    index: pi.wrapping_add(i as u64 + 1),
                    payload: EntryPayload::Noop,
                })
                .collect();
            MessageBody::AppendEntries(AppendRequest {
                prev_log_index: pi,
                prev_log_term: pt,
                entries,
                commit,
            })
        }),
        n().prop_map(|m| MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index: m })),
        (n(), n(), n()).prop_map(
            |(r, hi, ht)| MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
                rejected_index: r,
                hint_index: hi,
                hint_term: ht,
            })
        ),
        (commit(), n()).prop_map(|(c, r)| MessageBody::Heartbeat(Heartbeat {
            commit: c,
            read_round: r
        })),
        n().prop_map(|r| MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: r })),
        (snapshot_index(), n(), n(), any::<bool>(), n(), any::<u32>()).prop_map(|(i, t, off, done, total, crc)| {
            MessageBody::InstallSnapshot(SnapshotChunk {
                meta: SnapshotMeta {
                    index: i,
                    term: t,
                    membership: Membership::with_voters(NAMES),
                },
                offset: off,
                data: Bytes::from_static(b"junk"),
                done,
                total,
                crc,
            })
        }),
        (n(), n(), n(), any::<bool>()).prop_map(|(i, l, r, done)| MessageBody::InstallSnapshotResponse(
            SnapshotResponse {
                index: i,
                last_index: l,
                received: r,
                done,
            }
        )),
        Just(MessageBody::TimeoutNow),
        n().prop_map(|i| MessageBody::ReadIndexResponse(ReadIndexResponse {
            context: Bytes::new(),
            index: i,
        })),
        (n(), n(), n(), n()).prop_map(|(c, i, t, r)| MessageBody::Quiesce(Quiesce {
            commit: c,
            last_index: i,
            last_term: t,
            read_round: r,
        })),
    ]
}

/// One forged message from a stranger, to one of the nodes, with a number for a term or
/// the receiver's own term (so that the body's numbers are what is tested). Not from a
/// member: a lie in a member's name within the bounds (a vote request claiming an
/// up-to-date log, a commit index) can make a real node vote or commit against the
/// facts, which Raft cannot tell and no bound prevents.
fn hostile_message() -> impl Strategy<Value = (usize, usize, Option<u64>, MessageBody)> {
    (0..3usize, Just(3usize), prop::option::of(number()), hostile_body())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// RawNodes fed forged messages with huge terms and indexes, between ticks and
    /// honest traffic: no panic (debug builds check overflow), and once the forger
    /// stops, the cluster elects a leader and commits on every node.
    #[test]
    fn raw_nodes_fed_huge_terms_and_indexes_never_panic_and_still_elect_and_commit(
        forged in prop::collection::vec(hostile_message(), 1..40),
    ) {
        let mut net = Net::new(&NAMES);
        net.elect("a");
        net.node("a").propose(Bytes::from_static(b"before")).unwrap();
        net.settle();
        for (to, from, term, body) in forged {
            let to = NAMES[to];
            let from = ["a", "b", "c", "evil"][from];
            let term = term.unwrap_or_else(|| net.node(to).term());
            let m = Message { group: 0, from: id(from), to: id(to), term, body };
            let _ = net.node(to).step(m);
            // Honest traffic goes on; a forged message may have made a node send
            // anything, so delivery tolerates refusals here.
            for m in net.take() {
                if let Some(node) = net.nodes.get_mut(&m.to) {
                    let _ = node.step(m);
                }
            }
            for node in net.nodes.values_mut() {
                node.tick();
            }
        }
        // The forger is gone. Forged snapshots and entries within the bounds can make
        // a node's log diverge (Raft trusts its peers), but never stop the cluster.
        let mut leader_id = None;
        for _ in 0..200 {
            for node in net.nodes.values_mut() {
                node.tick();
            }
            for _ in 0..50 {
                let msgs = net.take();
                if msgs.is_empty() {
                    break;
                }
                for m in msgs {
                    // A node pushed to the term limit campaigns one term above what
                    // the others accept, until its answers (at the pushed term) or
                    // their time without a leader bring them up: refusals happen here.
                    if let Some(node) = net.nodes.get_mut(&m.to) {
                        let _ = node.step(m);
                    }
                }
            }
            if let Some(l) = leader(&net) {
                if net.nodes.values().all(|n| n.leader() == Some(&l)) {
                    leader_id = Some(l);
                    break;
                }
            }
        }
        let states: Vec<String> = net.nodes.values().map(|n| n.describe()).collect();
        let Some(l) = leader_id else {
            return Err(TestCaseError::fail(format!("no leader:\n{}", states.join("\n"))));
        };
        let (_, index) = net.node(l.as_str()).propose(Bytes::from_static(b"after")).unwrap();
        for _ in 0..100 {
            if net.nodes.values().all(|n| n.commit_index() >= index) {
                break;
            }
            for node in net.nodes.values_mut() {
                node.tick();
            }
            for _ in 0..50 {
                let msgs = net.take();
                if msgs.is_empty() {
                    break;
                }
                for m in msgs {
                    if let Some(node) = net.nodes.get_mut(&m.to) {
                        let _ = node.step(m);
                    }
                }
            }
        }
        for n in NAMES {
            prop_assert!(net.node(n).commit_index() >= index, "{}", net.node(n).describe());
        }
    }
}
