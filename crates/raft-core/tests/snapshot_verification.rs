//! A snapshot is checked before it replaces anything: its data against the checksum
//! the leader sent (assembled in memory, or staged by the driver), and, when the
//! driver stages it, against the state machine's verdict. A bad one is asked for
//! again from the start; nothing is installed.

use bytes::Bytes;
use raft_core::*;

const NAMES: [&str; 3] = ["a", "b", "c"];

fn follower(stream: bool) -> RawNode<MemStorage> {
    let mut cfg = Config::new("b");
    cfg.stream_snapshots = stream;
    RawNode::new(cfg, MemStorage::with_voters(NAMES)).unwrap()
}

fn chunk(data: &'static [u8], offset: u64, total: u64, crc: u32) -> Message {
    let data = Bytes::from_static(data);
    let done = offset + data.len() as u64 == total;
    Message {
        group: 0,
        from: NodeId::from("a"),
        to: NodeId::from("b"),
        term: 1,
        body: MessageBody::InstallSnapshot(SnapshotChunk {
            meta: SnapshotMeta {
                index: 10,
                term: 1,
                membership: Membership::with_voters(NAMES),
            },
            offset,
            data,
            done,
            total,
            crc,
        }),
    }
}

/// The snapshot responses in a Ready: (received, done), immediate ones first.
fn responses(rd: &Ready) -> Vec<(u64, bool)> {
    rd.messages
        .iter()
        .chain(&rd.persisted_messages)
        .filter_map(|m| match &m.body {
            MessageBody::InstallSnapshotResponse(r) => Some((r.received, r.done)),
            _ => None,
        })
        .collect()
}

fn send(node: &mut RawNode<MemStorage>, m: Message) -> Ready {
    node.step(m).unwrap();
    let rd = node.ready();
    node.advance();
    rd
}

#[test]
fn a_snapshot_that_fails_its_checksum_is_not_installed_and_is_asked_for_again() {
    let good = crc32fast::hash(b"abcdefgh");
    let mut b = follower(false);
    let rd = send(&mut b, chunk(b"abcd", 0, 8, good));
    assert_eq!(responses(&rd), vec![(4, false)]);
    // One byte flipped on the way.
    let rd = send(&mut b, chunk(b"efgX", 4, 8, good));
    assert!(rd.snapshot.is_none(), "a corrupted snapshot must not be installed");
    assert_eq!(responses(&rd), vec![(0, false)], "the leader is asked to start over");
    assert_eq!(b.status().commit, 0);
    // Sent again, intact: installed whole.
    send(&mut b, chunk(b"abcd", 0, 8, good));
    let rd = send(&mut b, chunk(b"efgh", 4, 8, good));
    let snap = rd.snapshot.clone().expect("installed");
    assert_eq!(&snap.data[..], b"abcdefgh");
    assert_eq!(responses(&rd), vec![(8, true)]);
}

#[test]
fn a_streamed_snapshot_is_handed_out_in_chunks_and_waits_for_the_state_machine() {
    let good = crc32fast::hash(b"abcdefgh");
    let mut b = follower(true);
    let rd = send(&mut b, chunk(b"abcd", 0, 8, good));
    assert_eq!(rd.snapshot_chunks.len(), 1);
    assert_eq!(rd.snapshot_chunks[0].offset, 0);
    assert_eq!(responses(&rd), vec![(4, false)]);
    let rd = send(&mut b, chunk(b"efgh", 4, 8, good));
    assert_eq!(rd.snapshot_chunks.len(), 1);
    assert!(rd.snapshot_chunks[0].done);
    assert!(rd.snapshot.is_none());
    assert!(responses(&rd).is_empty(), "no answer before the verdict");
    // A chunk of the same snapshot meanwhile changes nothing.
    let rd = send(&mut b, chunk(b"efgh", 4, 8, good));
    assert!(rd.snapshot_chunks.is_empty() && responses(&rd).is_empty());

    // The state machine rejects it: asked again from the start, nothing installed.
    b.snapshot_received(10, false);
    let rd = b.ready();
    b.advance();
    assert!(rd.snapshot.is_none());
    assert_eq!(responses(&rd), vec![(0, false)]);
    assert_eq!(b.status().commit, 0);
    // A late verdict for it is ignored.
    b.snapshot_received(10, true);
    assert!(!b.has_ready() || b.ready().snapshot.is_none());
    b.advance();

    // Sent again and accepted: installed, answered once persisted.
    send(&mut b, chunk(b"abcd", 0, 8, good));
    send(&mut b, chunk(b"efgh", 4, 8, good));
    b.snapshot_received(10, true);
    let rd = b.ready();
    let snap = rd.snapshot.clone().expect("installed");
    assert_eq!(snap.meta.index, 10);
    assert!(snap.data.is_empty(), "the driver holds the data");
    assert!(rd
        .messages
        .iter()
        .all(|m| !matches!(m.body, MessageBody::InstallSnapshotResponse(_))));
    assert_eq!(responses(&rd), vec![(0, true)]);
    b.advance();
    assert_eq!(b.status().commit, 10);
}

#[test]
fn a_streamed_snapshot_that_fails_its_checksum_is_never_offered_to_the_state_machine() {
    let good = crc32fast::hash(b"abcdefgh");
    let mut b = follower(true);
    send(&mut b, chunk(b"abcd", 0, 8, good));
    let rd = send(&mut b, chunk(b"efgX", 4, 8, good));
    assert_eq!(responses(&rd), vec![(0, false)]);
    // Not awaiting a verdict: an acceptance now installs nothing.
    b.snapshot_received(10, true);
    assert!(!b.has_ready() || b.ready().snapshot.is_none());
}

#[test]
fn a_chunk_outside_its_stated_length_is_refused_at_the_boundary() {
    let mut b = follower(true);
    let err = b.step(chunk(b"abcdefgh", 4, 8, 0)).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
}
