//! The message queue on three servers through faults: a producer enqueues numbered
//! messages and a consumer in a group polls and commits while the leader is killed
//! with SIGKILL (and restarted), the leader is frozen with SIGSTOP (and thawed), and
//! the leader is cut off from the other two by a partition (and the cut healed). Then a second consumer takes the group over once the first one's lease ran
//! out. Every acknowledged enqueue is in the topic exactly once, in acknowledgement
//! order (the producers write in client sessions, so every enqueue is retried through
//! the faults until acknowledged, and lands once); deliveries always
//! start at the group's committed offset, and the takeover resumes from it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::*;

const TOPIC: &str = "jobs";
const GROUP: &str = "g";
/// The consumers' lease: long enough for a poll and a commit, short enough to wait out.
const LEASE_MS: u64 = 3000;

/// What one enqueue came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged at this offset.
    Acked(u64),
    /// No definite answer before the deadline: it may or may not be in the topic.
    Maybe,
}

/// The producers, each numbering its messages from 0.
const PRODUCERS: [&str; 2] = ["a", "b"];

fn message(producer: &str, i: u64) -> String {
    format!("{producer}-{i}")
}

/// A producer: easyraft-client over every member, in a client session, so an enqueue
/// is retried through the faults (a lost answer, a killed or frozen leader) and lands
/// once.
struct Producer {
    name: &'static str,
    client: easyraft_client::client::Client,
    rt: tokio::runtime::Runtime,
}

impl Producer {
    fn new(name: &'static str, ports: &[u16]) -> Producer {
        let client = easyraft_client(ports, easyraft_client::client::Protocol::Http, None).with_sessions();
        let rt = tokio::runtime::Runtime::new().unwrap();
        Producer { name, client, rt }
    }

    /// Enqueues this producer's message `i`.
    fn enqueue(&self, i: u64) -> Outcome {
        use easyraft_client::client::Call;
        use easyraft_client::policy::CallKind;
        let params = json!({"topic": TOPIC, "message": message(self.name, i)});
        let call = Call::new("queue_enqueue", CallKind::Write, params);
        match self.rt.block_on(self.client.call(&call)) {
            Ok(r) => Outcome::Acked(r.result["offset"].as_u64().expect("an offset")),
            Err(easyraft_client::Error::UnknownOutcome { .. }) => Outcome::Maybe,
            Err(e) => panic!("enqueue {i}: {e}"),
        }
    }
}

fn produce(
    producer: &'static str,
    ports: Vec<u16>,
    outcomes: Outcomes,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let p = Producer::new(producer, &ports);
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let o = p.enqueue(i);
            outcomes.lock().unwrap().push((producer, i, o));
            i += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// The producers' outcomes, each producer's in the order they came back.
type Outcomes = Arc<Mutex<Vec<(&'static str, u64, Outcome)>>>;

/// What consumers were delivered: (consumer, offset, message), in order.
type Deliveries = Arc<Mutex<Vec<(String, u64, String)>>>;

/// A consumer of the group: its view of the committed offset, checked against every
/// delivery.
struct Consumer {
    name: String,
    ports: Vec<u16>,
    /// The committed offset as the consumer last learnt it.
    committed: u64,
    /// A commit whose outcome is unknown: the group's offset is `committed` or this.
    pending: Option<u64>,
    /// When the lease of its last successful poll ends (log time).
    lease_until: u64,
    deliveries: Deliveries,
}

impl Consumer {
    /// Polls until a delivery (retrying unknown outcomes: a poll moves no offset);
    /// checks it starts exactly at the committed offset and is contiguous. `Err`: the
    /// lease is another consumer's (its owner and end).
    fn poll(&mut self, max: u64, lease_ms: u64) -> Result<Vec<(u64, String)>, (String, u64)> {
        let p = json!({"topic": TOPIC, "group": GROUP, "consumer": self.name, "max": max, "lease_ms": lease_ms});
        let r = loop {
            match call_any(&self.ports, "queue_poll", p.clone(), None) {
                Ok(r) => break r,
                Err(e) if e["data"]["reason"] == "lease_held" => {
                    return Err((
                        e["data"]["owner"].as_str().unwrap().to_string(),
                        e["data"]["expires_at"].as_u64().unwrap(),
                    ))
                }
                Err(e) if e["code"] == -32021 || e["code"] == 0 => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("{}: poll: {e}", self.name),
            }
        };
        let committed = r["committed"].as_u64().unwrap();
        assert!(
            committed == self.committed || Some(committed) == self.pending,
            "{}: the group's committed offset is {committed}; it knew {} (pending {:?})",
            self.name,
            self.committed,
            self.pending
        );
        (self.committed, self.pending) = (committed, None);
        self.lease_until = r["expires_at"].as_u64().unwrap();
        assert_eq!(r["first"], 0, "retention dropped nothing");
        assert_eq!(r["lost"], 0);
        let got: Vec<(u64, String)> = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["offset"].as_u64().unwrap(),
                    m["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (k, (offset, _)) in got.iter().enumerate() {
            // Neither skipping past the committed offset nor re-delivering below it.
            assert_eq!(*offset, committed + k as u64, "{}: delivery {got:?}", self.name);
        }
        let mut d = self.deliveries.lock().unwrap();
        d.extend(got.iter().map(|(o, m)| (self.name.clone(), *o, m.clone())));
        Ok(got)
    }

    /// Commits `offset` (retrying an unknown outcome: a commit of the same offset is a
    /// no-op). `false`: the lease ran out meanwhile; poll again.
    fn commit(&mut self, offset: u64) -> bool {
        let p = json!({"topic": TOPIC, "group": GROUP, "consumer": self.name, "offset": offset});
        loop {
            match call_any(&self.ports, "queue_commit", p.clone(), None) {
                Ok(r) => {
                    assert_eq!(r["committed"], offset);
                    (self.committed, self.pending) = (offset, None);
                    return true;
                }
                Err(e) if e["code"] == -32021 || e["code"] == 0 => {
                    self.pending = Some(offset);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) if e["data"]["reason"] == "not_owner" => return false,
                Err(e) => panic!("{}: commit {offset}: {e}", self.name),
            }
        }
    }

    /// Polls and commits what it got until `stop`.
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            match self.poll(20, LEASE_MS) {
                Ok(got) => match got.last() {
                    Some((last, _)) => {
                        self.commit(last + 1);
                    }
                    None => std::thread::sleep(Duration::from_millis(50)),
                },
                Err((owner, _)) => panic!("{}: the lease is {owner}'s", self.name),
            }
        }
    }
}

/// The whole topic, read linearizably through `port`, by offset from 0.
fn read_all(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let p = json!({"topic": TOPIC, "offset": out.len(), "max": 1000});
        let r = call_leader(port, "queue_read", p, None).unwrap_or_else(|e| panic!("queue_read: {e}"));
        assert_eq!(r["first"], 0);
        let msgs = r["messages"].as_array().unwrap();
        for m in msgs {
            assert_eq!(m["offset"], out.len());
            out.push(m["message"].as_str().unwrap().to_string());
        }
        if msgs.is_empty() || out.len() as u64 == r["next"].as_u64().unwrap() {
            return out;
        }
    }
}

#[test]
fn t70_acknowledged_messages_survive_kill_stop_and_partition_exactly_once_and_a_group_fails_over_from_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, net) = start_cluster_relayed(dir.path(), 3);
    let (_, port) = leader(&nodes);
    let ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    let create = json!({"topic": TOPIC, "max_messages": 1_000_000, "max_bytes": 64 << 20});
    assert_eq!(
        call_leader(port, "queue_create", create, None).unwrap()["created"],
        true
    );
    // Refusals are typed, with their reason.
    let huge = json!({"topic": TOPIC, "message": "x".repeat(70_000)});
    let e = call_leader(port, "queue_enqueue", huge, None).unwrap_err();
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!(-32602), json!("message_too_large"))
    );
    let e = call_leader(
        port,
        "queue_poll",
        json!({"topic": "none", "group": GROUP, "consumer": "c"}),
        None,
    )
    .unwrap_err();
    assert_eq!(e["data"]["reason"], "no_such_topic");

    let outcomes: Outcomes = Default::default();
    let deliveries: Deliveries = Default::default();
    let stop_producer = Arc::new(AtomicBool::new(false));
    let stop_consumer = Arc::new(AtomicBool::new(false));
    let failed: Arc<Mutex<Option<String>>> = Default::default();
    let producers: Vec<_> = PRODUCERS
        .iter()
        .map(|p| produce(p, ports.clone(), outcomes.clone(), stop_producer.clone()))
        .collect();
    let consumer = {
        let (stop, failed) = (stop_consumer.clone(), failed.clone());
        let mut c1 = Consumer {
            name: "c1".into(),
            ports: ports.clone(),
            committed: 0,
            pending: None,
            lease_until: 0,
            deliveries: deliveries.clone(),
        };
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| c1.run(&stop)));
            if let Err(p) = r {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                *failed.lock().unwrap() = Some(msg.unwrap_or_default());
            }
            c1
        })
    };
    let acked = || {
        outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, o)| matches!(o, Outcome::Acked(_)))
            .count()
    };
    let delivered = || {
        if let Some(f) = failed.lock().unwrap().as_ref() {
            panic!("the consumer failed: {f}");
        }
        deliveries.lock().unwrap().len()
    };
    let progress = |what: &str| {
        let (a, d) = (acked(), delivered());
        wait_for(what, || (acked() >= a + 20 && delivered() >= d + 10).then_some(()));
    };
    progress("enqueues and deliveries before any fault");

    // The leader dies without a word (SIGKILL); a new one takes over; it comes back.
    let (old, _) = leader(&nodes);
    let i = nodes.iter().position(|n| n.id == old).unwrap();
    nodes[i].kill();
    let (new, _) = leader(&nodes);
    assert_ne!(new, old);
    progress("progress with the old leader dead");
    nodes[i].restart();
    progress("progress with the old leader back");

    // The leader freezes (SIGSTOP: its peers stop hearing it, its clients hang) long
    // enough to lose its lease on leadership, then thaws and finds a new leader.
    let (frozen, _) = leader(&nodes);
    let j = nodes.iter().position(|n| n.id == frozen).unwrap();
    nodes[j].signal("STOP");
    std::thread::sleep(Duration::from_millis(3000));
    nodes[j].signal("CONT");
    progress("progress after the leader thawed");

    // The leader is cut off from the other two (every process keeps running): the
    // majority elects a new one and goes on; the old one steps down; then it heals.
    net.cut_leader(&nodes);
    progress("progress with the leader cut off");
    net.heal();
    progress("progress after the partition healed");

    stop_producer.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    stop_consumer.store(true, Ordering::Relaxed);
    let mut c1 = consumer.join().unwrap();
    assert_eq!(*failed.lock().unwrap(), None);

    // A few more messages, so that c1's last batch below is not empty.
    let n = outcomes.lock().unwrap().iter().filter(|(p, _, _)| *p == "a").count() as u64;
    let a = Producer::new("a", &ports);
    for i in n..n + 5 {
        let o = a.enqueue(i);
        outcomes.lock().unwrap().push(("a", i, o));
    }

    // Failover: c1 polls one last batch and never commits it. c2 is refused while
    // c1's lease lives, then takes over from c1's committed offset, so that batch is
    // delivered again (at least once), and nothing below the commit is.
    // (A longer lease, so that c2's first poll surely finds it live.)
    let last = c1.poll(5, 3 * LEASE_MS).unwrap();
    assert!(!last.is_empty(), "the last messages are there to deliver");
    let c1_committed = c1.committed;
    let mut c2 = Consumer {
        name: "c2".into(),
        ports: ports.clone(),
        committed: c1_committed,
        pending: None,
        lease_until: 0,
        deliveries: deliveries.clone(),
    };
    let (owner, until) = c2.poll(5, LEASE_MS).expect_err("c1's lease is live");
    assert_eq!((owner.as_str(), until), ("c1", c1.lease_until));
    let first = wait_for("c1's lease to run out", || match c2.poll(50, LEASE_MS) {
        Ok(got) => Some(got),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(200));
            None
        }
    });
    // It got the lease once log time passed c1's: its own runs from then.
    assert!(
        c2.lease_until >= until + LEASE_MS,
        "{} < {until} + {LEASE_MS}",
        c2.lease_until
    );
    assert_eq!(
        first.first().map(|(o, _)| *o),
        Some(c1_committed),
        "c2 starts at the commit"
    );
    assert_eq!(first.first(), last.first(), "c1's uncommitted batch is delivered again");
    // c1 cannot commit any more.
    let p = json!({"topic": TOPIC, "group": GROUP, "consumer": "c1", "offset": c1_committed + 1});
    let e = call_any(&ports, "queue_commit", p, None).unwrap_err();
    assert_eq!(
        (e["data"]["reason"].clone(), e["data"]["owner"].clone()),
        (json!("not_owner"), json!("c2"))
    );
    // c2 drains the topic.
    let mut got = first;
    while let Some(&(last, _)) = got.last() {
        assert!(c2.commit(last + 1), "c2 kept its lease");
        got = c2.poll(200, LEASE_MS).unwrap();
    }

    // The topic: every acknowledged message exactly once, at its acknowledged offset,
    // in each producer's acknowledgement order; an unknown outcome at most once;
    // nothing else.
    let topic = read_all(port);
    let outcomes = outcomes.lock().unwrap().clone();
    let at: BTreeMap<&str, usize> = topic.iter().enumerate().map(|(k, m)| (m.as_str(), k)).collect();
    assert_eq!(at.len(), topic.len(), "a message is in the topic twice");
    let sent: BTreeSet<String> = outcomes.iter().map(|(p, i, _)| message(p, *i)).collect();
    for m in &topic {
        assert!(sent.contains(m), "{m} was never sent");
    }
    let mut last_acked: BTreeMap<&str, u64> = BTreeMap::new();
    for (p, i, o) in &outcomes {
        if let Outcome::Acked(offset) = o {
            let m = message(p, *i);
            assert_eq!(at.get(m.as_str()), Some(&(*offset as usize)), "acknowledged {m}");
            let before = last_acked.insert(p, *offset);
            assert!(before < Some(*offset), "acknowledged {m} at {offset} after {before:?}");
        }
    }
    let maybe = outcomes.iter().filter(|(_, _, o)| *o == Outcome::Maybe).count();
    let landed = outcomes
        .iter()
        .filter(|(p, i, o)| *o == Outcome::Maybe && at.contains_key(message(p, *i).as_str()))
        .count();
    eprintln!(
        "{} enqueues: {} acknowledged, {maybe} unknown ({landed} of them landed); {} deliveries",
        outcomes.len(),
        acked(),
        deliveries.lock().unwrap().len()
    );
    assert!(acked() > 60, "only {} acknowledged", acked());
    // In sessions, every enqueue was retried until acknowledged.
    assert_eq!(maybe, 0, "an enqueue in a session ended without an answer");
    // Every member holds the same topic (linearizable reads through each).
    for n in &nodes {
        assert_eq!(read_all(n.client), topic, "on {}", n.id);
    }
    // Each offset was delivered, with the message stored there; the group is done.
    let deliveries = deliveries.lock().unwrap().clone();
    let seen: BTreeSet<u64> = deliveries.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(seen, (0..topic.len() as u64).collect::<BTreeSet<_>>());
    for (who, offset, m) in &deliveries {
        assert_eq!(&topic[*offset as usize], m, "{who} at {offset}");
    }
    let info = call_leader(port, "queue_info", json!({"topic": TOPIC}), None).unwrap();
    assert_eq!(info["next"], topic.len());
    assert_eq!(info["groups"][GROUP]["committed"], topic.len());
    assert_eq!(info["groups"][GROUP]["owner"], "c2");
}
