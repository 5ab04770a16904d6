//! Regression test for a liveness bug found with the simulator: without pre-vote and
//! check-quorum, a node ignored AppendEntries from a leader of an older term without
//! telling it the newer term, counting on campaigning itself to make the leader step
//! down. A node that cannot campaign (a learner, or a voter whose log does not yet
//! say it is one again) then stayed at its higher term forever, and the leader never
//! reached it. A stale vote request (from a removed node that still has the old
//! configuration) is enough to raise such a node's term.

mod harness;

use bytes::Bytes;
use harness::*;
use raft_core::{MembershipChange, Message, MessageBody, VoteRequest};

#[test]
fn learner_with_a_higher_term_tells_the_leader_and_catches_up() {
    let classic = |c: &mut raft_core::Config| {
        c.pre_vote = false;
        c.check_quorum = false;
    };
    let mut net = Net::with_config(&["a", "b", "c"], classic);
    net.elect("a");
    net.add_empty_node("l", classic);
    net.node("a")
        .propose_membership_change(&[MembershipChange::AddLearner(id("l"))])
        .unwrap();
    net.settle();
    net.node("a").propose(Bytes::from_static(b"x")).unwrap();
    net.settle();
    assert_eq!(net.applied_commands("l"), vec![Bytes::from_static(b"x")]);
    // A removed node that never learned of its removal asks the learner for a vote.
    let term = net.node("l").term() + 5;
    net.deliver(Message {
        group: 0,
        from: id("removed"),
        to: id("l"),
        term,
        body: MessageBody::RequestVote(VoteRequest {
            pre_vote: false,
            last_log_index: 0,
            last_log_term: 0,
            leadership_transfer: false,
        }),
    });
    assert_eq!(net.node("l").term(), term);
    let leader = ["a", "b", "c"]
        .into_iter()
        .find(|n| net.node(n).role() == raft_core::Role::Leader)
        .unwrap();
    net.node(leader).propose(Bytes::from_static(b"y")).unwrap();
    net.settle();
    net.tick_all(100);
    assert_eq!(
        net.applied_commands("l"),
        vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")],
        "{}",
        net.node("l").describe()
    );
}
