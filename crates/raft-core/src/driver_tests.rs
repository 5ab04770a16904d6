//! Tests of [`ReadyDriver`](super::ReadyDriver): which messages wait for which write,
//! batched and stale completion reports, overwrites, crashes and snapshots.

use super::*;
use crate::config::Config;
use crate::entry::EntryPayload;
use crate::mem_storage::MemStorage;
use crate::message::{AppendRequest, AppendResponse, Heartbeat, MessageBody, VoteRequest};
use crate::planted_bugs::PlantedBugs;

fn follower() -> RawNode<MemStorage> {
    RawNode::new(Config::new("n2"), MemStorage::with_voters(["n1", "n2", "n3"])).expect("valid config")
}

fn from_leader(term: Term, body: MessageBody) -> Message {
    Message {
        group: 0,
        from: NodeId::new("n1"),
        to: NodeId::new("n2"),
        term,
        body,
    }
}

fn append(term: Term, prev: (LogIndex, Term), indexes: std::ops::RangeInclusive<u64>, commit: u64) -> Message {
    let entries = indexes
        .map(|index| Entry {
            term,
            index,
            payload: EntryPayload::Noop,
        })
        .collect();
    from_leader(
        term,
        MessageBody::AppendEntries(AppendRequest {
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries,
            commit,
        }),
    )
}

fn accepted(msgs: &[Message]) -> Vec<LogIndex> {
    msgs.iter()
        .filter_map(|m| match &m.body {
            MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index }) => Some(*match_index),
            _ => None,
        })
        .collect()
}

/// Steps `m` into `raw` and hands its Ready to `d`.
fn step(d: &mut ReadyDriver, raw: &mut RawNode<MemStorage>, m: Message) -> Work {
    raw.step(m).expect("valid message");
    let rd = raw.ready();
    d.on_ready(raw, rd)
}

fn write(raw: &mut RawNode<MemStorage>, job: &PersistJob) {
    let store = raw.storage_mut();
    if let Some(s) = &job.snapshot {
        store.apply_snapshot(s.clone());
    }
    store.append(&job.entries).expect("contiguous");
    if let Some(hs) = &job.hard_state {
        store.set_hard_state(hs.clone());
    }
}

#[test]
fn acknowledgements_wait_for_their_job_and_messages_do_not() {
    let mut raw = follower();
    let mut d = ReadyDriver::new(&HardState::default());
    let w = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
    assert!(accepted(&w.messages).is_empty(), "the ack must wait: {:?}", w.messages);
    let job = w.persist.expect("entries and a new term to write");
    assert_eq!((job.id, job.entries.len()), (JobId(1), 2));
    assert_eq!(job.hard_state.as_ref().map(|h| h.term), Some(1));
    assert_eq!((d.outstanding(), raw.persisted_index()), (1, 0));
    write(&mut raw, &job);
    let released = d.on_persisted(&mut raw, job.id).expect("outstanding");
    assert_eq!(accepted(&released), vec![2]);
    assert_eq!((d.outstanding(), raw.persisted_index()), (0, 2));
}

#[test]
fn commit_only_changes_are_not_written_unless_asked() {
    for (writes, expect_job) in [(HardStateWrites::TermAndVote, false), (HardStateWrites::Every, true)] {
        let mut raw = follower();
        let mut d = ReadyDriver::new(&HardState::default()).with_hard_state_writes(writes);
        let w = step(&mut d, &mut raw, append(1, (0, 0), 1..=1, 0));
        let job = w.persist.expect("entries");
        write(&mut raw, &job);
        d.on_persisted(&mut raw, job.id).expect("outstanding");
        // A heartbeat moves only the commit index.
        let hb = from_leader(
            1,
            MessageBody::Heartbeat(Heartbeat {
                commit: 1,
                read_round: 0,
            }),
        );
        let w = step(&mut d, &mut raw, hb);
        assert_eq!(w.persist.is_some(), expect_job, "{writes:?}: {:?}", w.persist);
        assert_eq!(w.committed_entries.len(), 1, "the persisted entry applies either way");
    }
}

#[test]
fn an_ack_without_a_write_of_its_own_waits_for_the_writes_before_it() {
    let mut raw = follower();
    let mut d = ReadyDriver::new(&HardState::default());
    let w1 = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
    let job1 = w1.persist.expect("a write");
    // The same append again: nothing new to write, but its ack promises entry 2.
    let w2 = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
    assert!(w2.persist.is_none());
    assert!(accepted(&w2.messages).is_empty(), "it must wait for job 1");
    write(&mut raw, &job1);
    assert_eq!(
        accepted(&d.on_persisted(&mut raw, job1.id).expect("outstanding")),
        vec![2, 2]
    );
    // With nothing outstanding, an ack leaves at once.
    let w3 = step(&mut d, &mut raw, append(1, (0, 0), 1..=2, 0));
    assert_eq!((w3.persist.is_none(), accepted(&w3.messages)), (true, vec![2]));
}

#[test]
fn a_batched_report_releases_every_job_up_to_it_in_order_and_stale_ones_are_refused() {
    let mut raw = follower();
    let mut d = ReadyDriver::new(&HardState::default());
    let j1 = step(&mut d, &mut raw, append(1, (0, 0), 1..=1, 0))
        .persist
        .expect("a write");
    let j2 = step(&mut d, &mut raw, append(1, (1, 1), 2..=3, 0))
        .persist
        .expect("a write");
    let j3 = step(&mut d, &mut raw, append(1, (3, 1), 4..=4, 0))
        .persist
        .expect("a write");
    assert_eq!(
        (j1.id, j2.id, j3.id, d.outstanding()),
        (JobId(1), JobId(2), JobId(3), 3)
    );
    assert!(j2.hard_state.is_none(), "the term was queued with job 1");
    for j in [&j1, &j2] {
        write(&mut raw, j);
    }
    assert_eq!(
        accepted(&d.on_persisted(&mut raw, j2.id).expect("outstanding")),
        vec![1, 3]
    );
    assert_eq!((raw.persisted_index(), d.next_to_complete()), (3, Some(JobId(3))));
    assert_eq!(
        d.on_persisted(&mut raw, j1.id),
        Err(CompletionError::Stale {
            job: JobId(1),
            next: Some(JobId(3))
        })
    );
    assert_eq!(
        d.on_persisted(&mut raw, JobId(9)),
        Err(CompletionError::Unknown {
            job: JobId(9),
            last: JobId(3)
        })
    );
    assert_eq!(
        (d.outstanding(), raw.persisted_index()),
        (1, 3),
        "refused reports change nothing"
    );
    write(&mut raw, &j3);
    assert_eq!(
        accepted(&d.on_persisted(&mut raw, j3.id).expect("outstanding")),
        vec![4]
    );
    assert!(matches!(
        d.on_persisted(&mut raw, j3.id),
        Err(CompletionError::Stale { next: None, .. })
    ));
}

#[test]
fn the_node_keeps_working_while_jobs_are_outstanding_and_overwrites_are_reported_safely() {
    let mut raw = follower();
    let mut d = ReadyDriver::new(&HardState::default());
    let j1 = step(&mut d, &mut raw, append(1, (0, 0), 1..=3, 0))
        .persist
        .expect("a write");
    // A leader of term 2 overwrites entries 2..=3 before job 1 is durable.
    let j2 = step(&mut d, &mut raw, append(2, (1, 1), 2..=2, 0))
        .persist
        .expect("a write");
    assert_eq!(raw.log_last_index(), 2);
    write(&mut raw, &j1);
    // Job 1's last entry (3 of term 1) is gone: the core ignores it, and the node
    // does not count anything beyond what is durable and still in its log.
    let released = d.on_persisted(&mut raw, j1.id).expect("outstanding");
    assert_eq!(accepted(&released), vec![3]);
    assert_eq!(raw.persisted_index(), 0);
    write(&mut raw, &j2);
    assert_eq!(
        accepted(&d.on_persisted(&mut raw, j2.id).expect("outstanding")),
        vec![2]
    );
    assert_eq!(raw.persisted_index(), 2);
}

#[test]
fn a_crash_loses_the_outstanding_jobs_and_their_acknowledgements() {
    let mut raw = follower();
    let mut d = ReadyDriver::new(&HardState::default());
    let vote = Message {
        group: 0,
        from: NodeId::new("n3"),
        to: NodeId::new("n2"),
        term: 1,
        body: MessageBody::RequestVote(VoteRequest {
            pre_vote: false,
            last_log_index: 0,
            last_log_term: 0,
            leadership_transfer: false,
        }),
    };
    let w = step(&mut d, &mut raw, vote);
    assert!(w.messages.is_empty(), "the vote waits for its write: {:?}", w.messages);
    assert_eq!(d.queued_vote(), (1, Some(&NodeId::new("n3"))));
    let j1 = w.persist.expect("a vote to write");
    write(&mut raw, &j1);
    assert_eq!(d.on_persisted(&mut raw, j1.id).expect("outstanding").len(), 1);
    let w = step(&mut d, &mut raw, append(2, (0, 0), 1..=1, 0));
    assert!(w.persist.is_some() && accepted(&w.messages).is_empty());
    // Crash: the driver and its outstanding job are dropped, the disk keeps job 1.
    drop(d);
    let disk = raw.into_storage();
    assert_eq!(
        (disk.hard_state().term, disk.hard_state().vote.clone()),
        (1, Some(NodeId::new("n3")))
    );
    let raw = RawNode::new(Config::new("n2"), disk).expect("restart");
    assert_eq!((raw.term(), raw.status().last_index), (1, 0));
    let d = ReadyDriver::new(raw.storage().hard_state());
    assert_eq!((d.outstanding(), d.last_job(), d.queued_vote().0), (0, JobId(0), 1));
}

#[test]
fn a_leaders_snapshot_is_written_and_installed() {
    let mut raw = follower();
    let mut d = ReadyDriver::new(&HardState::default());
    let meta = crate::entry::SnapshotMeta {
        index: 5,
        term: 1,
        membership: raw.status().membership,
    };
    let chunk = from_leader(
        1,
        MessageBody::InstallSnapshot(crate::message::SnapshotChunk {
            meta: meta.clone(),
            offset: 0,
            data: bytes::Bytes::from_static(b"state"),
            done: true,
            total: 5,
            crc: crc32fast::hash(b"state"),
        }),
    );
    let w = step(&mut d, &mut raw, chunk);
    assert_eq!(w.snapshot_to_install().map(|s| s.meta.index), Some(5));
    let job = w.persist.clone().expect("a write");
    write(&mut raw, &job);
    let released = d.on_persisted(&mut raw, job.id).expect("outstanding");
    assert_eq!(released.len(), 1, "the snapshot's answer waited: {released:?}");
    assert_eq!((raw.status().applied, raw.persisted_index()), (5, 5));
}

#[test]
fn the_planted_bug_acknowledges_before_the_write() {
    let mut config = Config::new("n2");
    config.bugs = PlantedBugs {
        ack_before_persist: true,
        ..Default::default()
    };
    let mut raw = RawNode::new(config, MemStorage::with_voters(["n1", "n2", "n3"])).expect("valid config");
    let mut d = ReadyDriver::new(&HardState::default());
    let w = step(&mut d, &mut raw, append(1, (0, 0), 1..=1, 0));
    assert_eq!(accepted(&w.messages), vec![1]);
    assert!(w.persist.is_some());
}
