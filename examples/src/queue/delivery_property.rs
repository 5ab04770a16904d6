//! The queue's delivery property: whatever the consumers of a group do, each delivery
//! is contiguous from the group's committed offset and the committed offset only grows.

use proptest::prelude::*;

use super::tests::{commit, create, enqueue, poll};
use super::{Queue, QueueError, QueueWritten};

/// One step of a consumer group's life.
#[derive(Clone, Debug)]
enum Op {
    Enqueue,
    Poll {
        consumer: u8,
        max: u64,
    },
    /// Commit `ahead` past the last delivery's start (may be past what it delivered).
    Commit {
        consumer: u8,
        ahead: u64,
    },
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Enqueue),
        3 => (0..2u8, 1..6u64).prop_map(|(consumer, max)| Op::Poll { consumer, max }),
        3 => (0..2u8, 0..8u64).prop_map(|(consumer, ahead)| Op::Commit { consumer, ahead }),
        1 => (0..1500u64).prop_map(Op::Wait),
    ]
}

proptest! {
    /// Whatever the consumers do, each delivery is contiguous from the group's
    /// committed offset (or the first kept, past retention), the committed offset
    /// only grows, and a message is the one enqueued at its offset.
    #[test]
    fn deliveries_are_contiguous_from_the_committed_offset(ops in proptest::collection::vec(op(), 1..80)) {
        let mut q = Queue::default();
        create(&mut q, "t", 6, 1000).unwrap();
        let mut sent: Vec<String> = Vec::new();
        let (mut now, mut last_start) = (1_000u64, 0u64);
        // The group's committed offset, once its first poll created it.
        let mut committed: Option<u64> = None;
        for op in ops {
            match op {
                Op::Enqueue => {
                    let m = format!("m{}", sent.len());
                    enqueue(&mut q, "t", &m).unwrap();
                    sent.push(m);
                }
                Op::Poll { consumer, max } => match poll(&mut q, &format!("c{consumer}"), max, now) {
                    Ok(QueueWritten::Delivered(d)) => {
                        let b = d.batch;
                        // A new group starts at the first offset kept.
                        let committed = *committed.get_or_insert(b.first);
                        prop_assert_eq!(d.committed, committed);
                        prop_assert_eq!(b.start, committed.max(b.first));
                        prop_assert_eq!(b.next, sent.len() as u64);
                        let want = (b.next - b.start).min(max);
                        prop_assert_eq!(b.messages.len() as u64, want);
                        for (offset, m) in (b.start..).zip(&b.messages) {
                            prop_assert_eq!(m, &sent[offset as usize]);
                        }
                        last_start = b.start;
                    }
                    Err(QueueError::LeaseHeld { owner, .. }) => prop_assert_ne!(owner, format!("c{consumer}")),
                    Err(QueueError::NoSuchTopic { .. }) => prop_assert!(sent.is_empty()),
                    other => prop_assert!(false, "{:?}", other),
                },
                Op::Commit { consumer, ahead } => {
                    let offset = last_start.saturating_add(ahead);
                    match commit(&mut q, &format!("c{consumer}"), offset, now) {
                        Ok(QueueWritten::Committed { offset: c }) => {
                            prop_assert!(committed.is_some_and(|old| c >= old) && c <= sent.len() as u64);
                            committed = Some(c);
                        }
                        Err(QueueError::CommitBackwards { committed: c, .. }) => {
                            prop_assert!(offset < c);
                            prop_assert_eq!(Some(c), committed);
                        }
                        Err(QueueError::CommitPastEnd { next, .. }) => prop_assert!(offset > next),
                        Err(QueueError::NotOwner { .. } | QueueError::NoSuchTopic { .. }) => {}
                        other => prop_assert!(false, "{:?}", other),
                    }
                }
                Op::Wait(ms) => now += ms,
            }
        }
    }
}
