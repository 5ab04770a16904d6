//! The JSON envelope end to end: a 3-node cluster whose nodes send with
//! `Encoding::Json` elects, replicates, serves a read on a follower (ReadIndex), hands
//! leadership over (TimeoutNow), and brings a node that was down past a log
//! compaction back with a snapshot (InstallSnapshot). A wrapper counts what was sent:
//! every one of the eleven message kinds crossed the wire as a text frame and the
//! cluster ended consistent, so the envelope carries each of them.
//!
//! Also: every JSON example in `docs/protocol.md` decodes, and is exactly what
//! `raft_wire::encode_envelope` produces for the decoded message.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use raft_cluster::{Inbox, Transport, TransportError};
use raft_core::{Message, MessageBody, NodeId};
use raft_discovery::StaticServiceDiscovery;
use raft_storage::{FileStorage, Options};
use raft_transport_ws::{Encoding, WsTransport};
use support::*;

type Seen = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// A `WsTransport` that counts the kinds of the messages it sent successfully.
#[derive(Clone)]
struct Counting {
    ws: WsTransport,
    seen: Seen,
}

#[async_trait]
impl Transport for Counting {
    async fn start(&self, inbox: Inbox) -> Result<(), TransportError> {
        self.ws.start(inbox).await
    }
    async fn send(&self, to: &NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        let kinds: Vec<&'static str> = messages.iter().map(|m| m.body.kind()).collect();
        self.ws.send(to, messages).await?;
        let mut seen = self.seen.lock().unwrap();
        for k in kinds {
            *seen.entry(k).or_default() += 1;
        }
        Ok(())
    }
    async fn stop(&self) {
        self.ws.stop().await
    }
}

struct Harness {
    dir: tempfile::TempDir,
    discovery: Arc<StaticServiceDiscovery>,
    seen: Seen,
    voters: Vec<NodeId>,
}

impl Harness {
    async fn start(&self, id: &NodeId) -> Node {
        let mut cfg = ws_config("json");
        cfg.encoding = Encoding::Json;
        let ws = WsTransport::new(id.clone(), cfg, self.discovery.clone());
        let counting = Counting {
            ws: ws.clone(),
            seen: self.seen.clone(),
        };
        let storage = FileStorage::open(self.dir.path().join(id.as_str()), Options::default()).unwrap();
        let mut raft = raft_config();
        raft.snapshot_interval = 40;
        // Idle, the cluster quiesces (Quiesce). Safe here without a host's liveness
        // beats: no node dies while the cluster is quiesced.
        raft.quiesce = true;
        start_with_transport(id.as_str(), &self.voters, raft, counting, &ws, &self.discovery, storage).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_encoded_cluster_elects_replicates_reads_transfers_and_installs_snapshots() {
    let h = Harness {
        dir: tempfile::tempdir().unwrap(),
        discovery: Arc::new(StaticServiceDiscovery::default()),
        seen: Seen::default(),
        voters: ids(3),
    };
    let mut nodes = Vec::new();
    for id in &h.voters {
        nodes.push(h.start(id).await);
    }
    let mut want = Vec::new();
    for v in 0..30u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    converge(&nodes, &want).await;

    // A linearizable read on a follower goes through the leader (ReadIndex).
    let leader = leader_of(&nodes).await;
    let follower = nodes.iter().find(|n| n.id() != leader.id()).unwrap().clone();
    assert_eq!(follower.read(()).await.unwrap(), want);

    // Leadership transfer (TimeoutNow).
    leader.transfer_leadership(follower.id().clone()).await.unwrap();
    wait_until("the transfer to finish", || {
        let v = follower.view();
        v.role == raft_core::Role::Leader
    })
    .await;

    // A node that is down while the log is compacted past it comes back through a
    // snapshot (InstallSnapshot), on a new port found through discovery.
    let leader = leader_of(&nodes).await;
    let lagger = nodes.iter().position(|n| n.id() != leader.id()).unwrap();
    let lagger_id = nodes[lagger].id().clone();
    nodes[lagger].shutdown().await;
    let up: Vec<Node> = nodes.iter().filter(|n| n.id() != &lagger_id).cloned().collect();
    for v in 30..130u64 {
        propose(&up, v).await;
        want.push(v);
    }
    let st = leader_of(&up).await.status().await.unwrap();
    assert!(st.first_index > 31, "the leader compacted its log: {st:?}");
    nodes[lagger] = h.start(&lagger_id).await;
    converge(&nodes, &want).await;
    wait_until("the idle cluster to quiesce", || {
        nodes.iter().all(|n| n.view().quiesced)
    })
    .await;

    let seen = h.seen.lock().unwrap().clone();
    for kind in MessageBody::KINDS {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} crossed the wire: {seen:?}"
        );
    }
    for n in &nodes {
        n.shutdown().await;
    }
}

/// The ```json blocks of docs/protocol.md.
fn doc_json_blocks() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_envelope_example_in_the_protocol_doc_is_what_the_encoder_produces() {
    let mut kinds_seen = std::collections::BTreeSet::new();
    for block in doc_json_blocks() {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(&block) else {
            continue;
        };
        let Some(kind) = obj.get("messageType").and_then(|k| k.as_str()).map(str::to_string) else {
            continue;
        };
        if !MessageBody::KINDS.contains(&kind.as_str()) {
            continue;
        }
        let env = raft_wire::decode_envelope(&block)
            .unwrap_or_else(|e| panic!("doc example does not decode: {e:?}\n{block}"));
        let id = env.message_id.clone().expect("examples carry a messageId");
        let again: serde_json::Value = serde_json::from_str(&raft_wire::encode_envelope(&env.message, &id)).unwrap();
        assert_eq!(
            again,
            serde_json::Value::Object(obj),
            "the doc example differs from the encoder's output"
        );
        kinds_seen.insert(kind);
    }
    for kind in MessageBody::KINDS {
        assert!(kinds_seen.contains(kind), "docs/protocol.md has no example of {kind}");
    }
}
