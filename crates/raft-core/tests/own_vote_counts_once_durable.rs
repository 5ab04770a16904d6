//! Regression for a bug the simulator found once writes complete late: a candidate
//! counted its own vote before the vote was durable. It could win, crash before the
//! write completed, restart in the previous term, campaign in the same term again,
//! win it a second time (the voters grant the same candidate again) and write
//! different entries at the indexes it had already sent out as leader of that term
//! (a Log Matching violation). A candidate now counts itself only once the hard state
//! with its vote is durable (`RawNode::on_hard_state_persisted`, which `ReadyDriver`
//! and `advance` call).

use raft_core::{Config, HardState, MemStorage, Message, MessageBody, NodeId, PersistJob, RawNode, ReadyDriver, Role};

fn node(name: &str) -> (RawNode<MemStorage>, ReadyDriver) {
    let mut c = Config::new(name);
    c.pre_vote = false;
    let raw = RawNode::new(c, MemStorage::with_voters(["a", "b", "c"])).unwrap();
    (raw, ReadyDriver::new(&HardState::default()))
}

fn write(raw: &mut RawNode<MemStorage>, job: &PersistJob) {
    let store = raw.storage_mut();
    store.append(&job.entries).unwrap();
    if let Some(hs) = &job.hard_state {
        store.set_hard_state(hs.clone());
    }
}

/// Hands `raw`'s Ready to `d`, completes its write at once, returns every message.
fn drive_now(raw: &mut RawNode<MemStorage>, d: &mut ReadyDriver) -> Vec<Message> {
    let rd = raw.ready();
    let w = d.on_ready(raw, rd);
    let mut out = w.messages;
    if let Some(job) = w.persist {
        write(raw, &job);
        out.extend(d.on_persisted(raw, job.id).unwrap());
    }
    out
}

#[test]
fn a_candidate_does_not_win_on_a_vote_it_has_not_persisted() {
    let (mut a, mut da) = node("a");
    let (mut b, mut db) = node("b");
    a.campaign();
    let rd = a.ready();
    let w = da.on_ready(&mut a, rd);
    let vote_job = w.persist.expect("the vote for itself is written");
    let to_b: Vec<Message> = w.messages.into_iter().filter(|m| m.to == NodeId::new("b")).collect();
    assert_eq!(to_b.len(), 1);
    for m in to_b {
        b.step(m).unwrap();
    }
    let answers = drive_now(&mut b, &mut db);
    assert!(answers
        .iter()
        .any(|m| matches!(&m.body, MessageBody::RequestVoteResponse(v) if v.granted)));
    for m in answers {
        a.step(m).unwrap();
    }
    // b's vote is durable, a's own is not: one vote of three.
    assert_eq!(a.role(), Role::Candidate, "{}", a.describe());

    // A crash now loses the write: a never led term 1, so campaigning in it again
    // after the restart is safe.
    let disk = a.storage().clone();
    let restarted = RawNode::new(Config::new("a"), disk).unwrap();
    assert_eq!((restarted.term(), restarted.role()), (0, Role::Follower));

    // Without the crash, the write completes and the vote counts: a wins.
    write(&mut a, &vote_job);
    da.on_persisted(&mut a, vote_job.id).unwrap();
    assert_eq!(a.role(), Role::Leader, "{}", a.describe());
}

#[test]
fn a_single_voter_leads_once_its_vote_is_persisted() {
    let mut raw = RawNode::new(Config::new("a"), MemStorage::with_voters(["a"])).unwrap();
    let mut d = ReadyDriver::new(&HardState::default());
    raw.campaign();
    assert_eq!(raw.role(), Role::Candidate);
    let rd = raw.ready();
    let job = d.on_ready(&mut raw, rd).persist.expect("the vote");
    assert_eq!(raw.role(), Role::Candidate, "not before the write completes");
    write(&mut raw, &job);
    d.on_persisted(&mut raw, job.id).unwrap();
    assert_eq!(raw.role(), Role::Leader);
}
