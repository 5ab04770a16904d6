//! Every message kind round-trips through both encodings (the JSON envelope and the
//! binary frame).

use bytes::Bytes;
use raft_core::*;

use crate::{decode_binary, decode_envelope, encode_binary, encode_envelope};

fn all_kinds() -> Vec<MessageBody> {
    let meta = SnapshotMeta {
        index: 4,
        term: 2,
        membership: Membership::with_voters(["a", "b"]),
    };
    vec![
        MessageBody::RequestVote(VoteRequest {
            pre_vote: true,
            last_log_index: 3,
            last_log_term: 1,
            leadership_transfer: false,
        }),
        MessageBody::RequestVoteResponse(VoteResponse {
            pre_vote: false,
            granted: true,
        }),
        MessageBody::AppendEntries(AppendRequest {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![
                Entry {
                    term: 2,
                    index: 2,
                    payload: EntryPayload::Command(Bytes::from_static(b"x")),
                },
                Entry {
                    term: 2,
                    index: 3,
                    payload: EntryPayload::Noop,
                },
            ],
            commit: 1,
        }),
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index: 3 }),
        MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
            rejected_index: 3,
            hint_index: 2,
            hint_term: 1,
        }),
        MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm),
        MessageBody::Heartbeat(Heartbeat {
            commit: 3,
            read_round: 9,
        }),
        MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: 9 }),
        MessageBody::InstallSnapshot(SnapshotChunk {
            meta,
            offset: 0,
            data: Bytes::from_static(b"snap"),
            done: true,
            total: 4,
            crc: 7,
        }),
        MessageBody::InstallSnapshotResponse(SnapshotResponse {
            index: 4,
            last_index: 4,
            received: 4,
            done: true,
        }),
        MessageBody::TimeoutNow,
        MessageBody::ReadIndex(ReadIndexRequest {
            context: Bytes::from_static(b"c"),
        }),
        MessageBody::ReadIndexResponse(ReadIndexResponse {
            context: Bytes::from_static(b"c"),
            index: 3,
        }),
        MessageBody::Quiesce(Quiesce {
            commit: 3,
            last_index: 3,
            last_term: 2,
            read_round: 9,
        }),
    ]
}

#[test]
fn every_message_kind_round_trips_through_both_encodings() {
    for body in all_kinds() {
        let m = Message {
            group: 0,
            from: "node1".into(),
            to: "node2".into(),
            term: 3,
            body,
        };
        let text = encode_envelope(&m, "id-1");
        let env = decode_envelope(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(env.message, m, "{text}");
        assert_eq!(env.message_id.as_deref(), Some("id-1"));
        let bin = encode_binary(std::slice::from_ref(&m)).unwrap();
        assert_eq!(decode_binary(&bin).unwrap(), vec![m]);
    }
}
