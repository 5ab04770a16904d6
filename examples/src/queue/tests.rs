//! The queue's unit tests: retention, leases in log time, commits, bounds, batches,
//! snapshots and refusals. The delivery property is in `delivery_property`.

use serde_json::{json, Value};

use super::rpc::refused;
use super::*;
use crate::api::BAD_REQUEST;
use easyraft::StateMachine;

pub(super) fn create(q: &mut Queue, topic: &str, max_messages: u64, max_bytes: u64) -> QueueResult {
    let retention = Retention {
        max_messages,
        max_bytes,
    };
    q.apply(
        1,
        QueueCommand::Create {
            topic: topic.into(),
            retention,
            now_ms: 0,
        },
    )
}

pub(super) fn enqueue(q: &mut Queue, topic: &str, message: &str) -> QueueResult {
    let cmd = QueueCommand::Enqueue {
        topic: topic.into(),
        message: message.into(),
        now_ms: 0,
    };
    q.apply(7, cmd)
}

pub(super) fn poll(q: &mut Queue, consumer: &str, max: u64, now_ms: u64) -> QueueResult {
    q.apply(
        9,
        QueueCommand::Poll {
            topic: "t".into(),
            group: "g".into(),
            consumer: consumer.into(),
            max,
            lease_ms: 1000,
            now_ms,
        },
    )
}

pub(super) fn commit(q: &mut Queue, consumer: &str, offset: u64, now_ms: u64) -> QueueResult {
    q.apply(
        10,
        QueueCommand::Commit {
            topic: "t".into(),
            group: "g".into(),
            consumer: consumer.into(),
            offset,
            now_ms,
        },
    )
}

fn delivered(r: QueueResult) -> (u64, Vec<String>, u64) {
    match r {
        Ok(QueueWritten::Delivered(d)) => (d.batch.start, d.batch.messages, d.committed),
        other => panic!("{other:?}"),
    }
}

fn read(q: &Queue, offset: u64) -> Batch {
    match q.query(QueueQuery::Read {
        topic: "t".into(),
        offset,
        max: 100,
    }) {
        QueueAnswer::Messages(Some(b)) => b,
        other => panic!("{other:?}"),
    }
}

fn info(q: &Queue, now_ms: u64) -> TopicInfo {
    match q.query(QueueQuery::Info {
        topic: "t".into(),
        now_ms,
    }) {
        QueueAnswer::Info(Some(i)) => i,
        other => panic!("{other:?}"),
    }
}

#[test]
fn offsets_are_dense_and_retention_drops_the_oldest_by_count_or_bytes() {
    let mut q = Queue::default();
    assert!(matches!(
        create(&mut q, "t", 3, 10),
        Ok(QueueWritten::Created { created: true, .. })
    ));
    for (i, m) in ["aa", "bb", "cc"].iter().enumerate() {
        let r = enqueue(&mut q, "t", m);
        assert!(
            matches!(r, Ok(QueueWritten::Enqueued { offset, index: 7, first: 0 }) if offset == i as u64),
            "{r:?}"
        );
    }
    // Past the count: offset 0 goes, and a read from it starts at the first kept.
    assert!(matches!(
        enqueue(&mut q, "t", "dd"),
        Ok(QueueWritten::Enqueued {
            offset: 3,
            first: 1,
            ..
        })
    ));
    let b = read(&q, 0);
    assert_eq!((b.first, b.next, b.start), (1, 4, 1));
    assert_eq!(b.messages, ["bb", "cc", "dd"]);
    // Past the count and the bytes (6 + 7 > 10): two go.
    let r = enqueue(&mut q, "t", "eeeeeee");
    assert!(
        matches!(
            r,
            Ok(QueueWritten::Enqueued {
                offset: 4,
                first: 3,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(read(&q, 0).messages, ["dd", "eeeeeee"]);
    assert_eq!(info(&q, 0).bytes, 9);
    // A message larger than the topic's budget is refused, not dropped at once.
    let big = enqueue(&mut q, "t", "01234567890");
    assert_eq!(big, Err(QueueError::MessageTooLarge { bytes: 11, limit: 10 }));
    // A group that starts late starts at the first offset kept; one that fell behind
    // is told how far.
    let (start, msgs, committed) = delivered(poll(&mut q, "c", 10, 0));
    assert_eq!((start, msgs.len(), committed), (3, 2, 3));
    assert_eq!(commit(&mut q, "c", 4, 0), Ok(QueueWritten::Committed { offset: 4 }));
    for m in ["f", "g", "h"] {
        enqueue(&mut q, "t", m).unwrap();
    }
    let (start, msgs, committed) = delivered(poll(&mut q, "c", 10, 0));
    assert_eq!(
        (start, committed),
        (5, 4),
        "offset 4 was dropped before the group got to it"
    );
    assert_eq!(msgs, ["f", "g", "h"]);
    // Shrinking the retention trims at once; reading past the end is empty.
    assert!(matches!(
        create(&mut q, "t", 1, 10),
        Ok(QueueWritten::Created { created: false, .. })
    ));
    let b = read(&q, 100);
    assert_eq!((b.first, b.next, b.start, b.messages.len()), (7, 8, 8, 0));
}

#[test]
fn a_live_lease_is_exclusive_and_after_it_expires_in_log_time_another_consumer_resumes_from_the_commit() {
    let mut q = Queue::default();
    for i in 0..5 {
        enqueue(&mut q, "t", &format!("m{i}")).unwrap();
    }
    let (start, msgs, _) = delivered(poll(&mut q, "a", 3, 10_000));
    assert_eq!((start, msgs), (0, vec!["m0".to_string(), "m1".into(), "m2".into()]));
    commit(&mut q, "a", 2, 10_100).unwrap();
    // b is refused while a's lease (10_000 + 1000) lives, and told until when.
    let held = poll(&mut q, "b", 3, 10_500);
    assert_eq!(
        held,
        Err(QueueError::LeaseHeld {
            owner: "a".into(),
            expires_at: 11_000
        })
    );
    // A proposer with a lagging clock cannot move log time back and expire it early.
    assert!(matches!(
        poll(&mut q, "b", 3, 11_000 - 1),
        Err(QueueError::LeaseHeld { .. })
    ));
    assert_eq!(info(&q, 0).groups["g"].owner.as_deref(), Some("a"));
    // A reader's clock past the lease shows no owner before any write moves log time.
    assert_eq!(info(&q, 11_000).groups["g"].owner, None);
    // Once log time passes the lease, b takes over from the committed offset: m2 is
    // delivered again, m0 and m1 are not.
    let (start, msgs, committed) = delivered(poll(&mut q, "b", 10, 11_000));
    assert_eq!((start, committed, msgs.len()), (2, 2, 3));
    // a's lease is gone: it can neither commit nor take the group back.
    assert_eq!(
        commit(&mut q, "a", 3, 11_001),
        Err(QueueError::NotOwner {
            owner: Some("b".into())
        })
    );
    assert!(matches!(
        poll(&mut q, "a", 1, 11_002),
        Err(QueueError::LeaseHeld { .. })
    ));
    // Renewing extends b's lease from the new log time.
    let Ok(QueueWritten::Delivered(d)) = poll(&mut q, "b", 1, 11_500) else {
        panic!()
    };
    assert_eq!(d.expires_at, 12_500);
}

#[test]
fn only_the_owner_commits_never_backwards_never_past_the_end_and_a_repeat_is_a_no_op() {
    let mut q = Queue::default();
    // Committing to a group that never polled, or on a missing topic.
    assert_eq!(
        commit(&mut q, "a", 0, 0),
        Err(QueueError::NoSuchTopic { topic: "t".into() })
    );
    for i in 0..3 {
        enqueue(&mut q, "t", &format!("m{i}")).unwrap();
    }
    assert_eq!(commit(&mut q, "a", 0, 0), Err(QueueError::NotOwner { owner: None }));
    delivered(poll(&mut q, "a", 10, 0));
    assert_eq!(
        commit(&mut q, "b", 1, 1),
        Err(QueueError::NotOwner {
            owner: Some("a".into())
        })
    );
    assert_eq!(commit(&mut q, "a", 2, 1), Ok(QueueWritten::Committed { offset: 2 }));
    assert_eq!(commit(&mut q, "a", 2, 2), Ok(QueueWritten::Committed { offset: 2 }));
    assert_eq!(
        commit(&mut q, "a", 1, 3),
        Err(QueueError::CommitBackwards {
            offset: 1,
            committed: 2
        })
    );
    assert_eq!(
        commit(&mut q, "a", 4, 4),
        Err(QueueError::CommitPastEnd { offset: 4, next: 3 })
    );
    assert_eq!(
        commit(&mut q, "a", u64::MAX, 5),
        Err(QueueError::CommitPastEnd {
            offset: u64::MAX,
            next: 3
        })
    );
    assert_eq!(commit(&mut q, "a", 3, 6), Ok(QueueWritten::Committed { offset: 3 }));
    // After the lease ran out, even the last owner must poll again.
    assert_eq!(commit(&mut q, "a", 3, 1000), Err(QueueError::NotOwner { owner: None }));
    assert_eq!(info(&q, 0).groups["g"].committed, 3);
}

#[test]
fn topics_groups_names_messages_and_budgets_are_bounded() {
    let mut q = Queue::default();
    let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        enqueue(&mut q, "t", &huge),
        Err(QueueError::MessageTooLarge { .. })
    ));
    assert!(matches!(
        enqueue(&mut q, "", "m"),
        Err(QueueError::BadName { what, .. }) if what == "topic"
    ));
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    assert!(matches!(enqueue(&mut q, &long, "m"), Err(QueueError::BadName { .. })));
    // Budgets: the retention of every topic adds up to at most the totals.
    assert!(create(&mut q, "big", LIMIT_MAX_MESSAGES, LIMIT_MAX_BYTES).is_ok());
    let mut made = 1;
    loop {
        match create(&mut q, &format!("t{made}"), 1, LIMIT_MAX_BYTES) {
            Ok(_) => made += 1,
            Err(QueueError::OverBudget { free_bytes, .. }) => {
                assert!(free_bytes < LIMIT_MAX_BYTES);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(made as u64, MAX_TOTAL_BYTES / LIMIT_MAX_BYTES);
    // Retention out of range is clamped when it comes from the log.
    let Ok(QueueWritten::Created { retention, .. }) = create(&mut q, "big", 0, 0) else {
        panic!()
    };
    assert_eq!((retention.max_messages, retention.max_bytes), (1, 1));
    // The topic count.
    let mut q = Queue::default();
    for i in 0..MAX_TOPICS {
        create(&mut q, &format!("t{i}"), 1, 1).unwrap();
    }
    assert_eq!(
        enqueue(&mut q, "one-more", "m"),
        Err(QueueError::TooManyTopics { limit: MAX_TOPICS })
    );
    // The groups of a topic, and a poll's size.
    let mut q = Queue::default();
    for i in 0..(MAX_POLL + 5) {
        enqueue(&mut q, "t", &i.to_string()).unwrap();
    }
    for g in 0..MAX_GROUPS {
        let cmd = QueueCommand::Poll {
            topic: "t".into(),
            group: format!("g{g}"),
            consumer: "c".into(),
            max: u64::MAX,
            lease_ms: u64::MAX,
            now_ms: u64::MAX,
        };
        let Ok(QueueWritten::Delivered(d)) = q.apply(1, cmd) else {
            panic!()
        };
        assert_eq!(d.batch.messages.len() as u64, MAX_POLL);
        assert_eq!(d.expires_at, u64::MAX, "saturates");
    }
    assert_eq!(
        poll(&mut q, "c", 1, 0),
        Err(QueueError::TooManyGroups { limit: MAX_GROUPS })
    );
}

#[test]
fn a_batch_stops_at_its_byte_budget_but_always_carries_one_message() {
    let mut q = Queue::default();
    create(&mut q, "t", 100, LIMIT_MAX_BYTES).unwrap();
    let m = "y".repeat(MAX_MESSAGE_BYTES);
    for _ in 0..40 {
        enqueue(&mut q, "t", &m).unwrap();
    }
    let b = read(&q, 0);
    assert_eq!(b.messages.len() as u64, MAX_BATCH_BYTES / MAX_MESSAGE_BYTES as u64);
    assert!(!read(&q, 39).messages.is_empty());
}

#[test]
fn a_snapshot_round_trips_messages_offsets_groups_and_log_time() {
    let mut q = Queue::default();
    create(&mut q, "t", 2, 100).unwrap();
    for m in ["a", "b", "c"] {
        enqueue(&mut q, "t", m).unwrap();
    }
    delivered(poll(&mut q, "a", 1, 5_000));
    commit(&mut q, "a", 2, 5_001).unwrap();
    let mut back = Queue::default();
    back.restore(&q.snapshot().unwrap()).unwrap();
    assert_eq!(info(&back, 0), info(&q, 0));
    assert_eq!(read(&back, 0), read(&q, 0));
    // Log time came along: the lease is still a's.
    assert!(matches!(poll(&mut back, "b", 1, 0), Err(QueueError::LeaseHeld { .. })));
    assert!(back.restore(b"garbage").is_err());
}

#[test]
fn refusals_carry_their_reason_and_fields_as_data() {
    let e = refused(QueueError::LeaseHeld {
        owner: "a".into(),
        expires_at: 5,
    });
    assert_eq!(e.code(), BAD_REQUEST);
    let data: Value = serde_json::from_str(e.data().unwrap().get()).unwrap();
    assert_eq!(data, json!({"reason": "lease_held", "owner": "a", "expires_at": 5}));
}
