//! Exactly-once sessions (`raft_cluster::sessions`).
//!
//! The property: whatever the interleaving of clients, retries (a command proposed
//! again any number of times, before or after later ones), acknowledgements and a
//! replica restored from a snapshot taken at any point, (1) every (session, seq)
//! takes effect exactly once, (2) every answer to the same (session, seq) is the
//! first one, and (3) a replica restored from the snapshot and fed the rest of the
//! log ends byte-for-byte identical (sessions, kept responses and all).
//!
//! Expiry is the same on every replica: with stamps from several leaders' clocks
//! (going back as well as forward), registrations past the limit, keep-alives and
//! closes, the wrapper expires exactly the sessions a reference model of log time
//! expires, at the same entry, and replicas restored from snapshots taken at any two
//! points answer every later entry as the first replica does.
//!
//! And through a real cluster: a leader killed while writes are in flight, each write
//! retried with its session until answered, and answered writes sent again (a lost
//! reply), leave the counter at exactly the sum of the writes; a write retried on a
//! node that learned of it only from an installed snapshot gets its first answer and
//! takes no second effect.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use raft_cluster::sessions::{
    Session, SessionCommand, SessionError, SessionId, SessionLimits, SessionResponse, Sessions,
};
use raft_cluster::testing::Counter;
use raft_cluster::{Cluster, Error, MemNetwork, MemTransport, RaftConfig, RaftHandle, StateMachine};
use raft_core::NodeId;
use raft_storage::{FileStorage, Options};
use tokio::time::Instant;

#[derive(Clone, Debug)]
enum Op {
    /// Client c sends a new command adding `add`.
    Send(usize, u64),
    /// Client c sends again its k-th outstanding command.
    Retry(usize, usize),
    /// Client c gets the answer of its k-th outstanding command.
    Answer(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..100u64).prop_map(|(c, a)| Op::Send(c, a)),
        (0..3usize, 0..4usize).prop_map(|(c, k)| Op::Retry(c, k)),
        (0..3usize, 0..4usize).prop_map(|(c, k)| Op::Answer(c, k)),
    ]
}

fn snapshot(sm: &Sessions<Counter>) -> Vec<u8> {
    let mut out = Vec::new();
    sm.write_snapshot(&mut out).unwrap();
    out
}

proptest! {
    #[test]
    fn every_command_takes_effect_once_and_replicas_restored_from_a_snapshot_agree(
        ops in prop::collection::vec(op(), 1..200),
        cut in any::<prop::sample::Index>(),
    ) {
        // The log: three registrations, then the clients' commands as they send them.
        let mut log: Vec<SessionCommand<u64>> = (0..3).map(|i| SessionCommand::Register { at_ms: i }).collect();
        let mut clients: Vec<Session> = (1..=3).map(Session::new).collect();
        let mut outstanding: Vec<Vec<SessionCommand<u64>>> = vec![Vec::new(); 3];
        let mut adds: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (t, op) in ops.iter().enumerate() {
            let at = 10 + t as u64;
            match *op {
                Op::Send(c, add) => {
                    let cmd = clients[c].command(add, at);
                    if let SessionCommand::Apply { session, seq, .. } = cmd {
                        adds.insert((session, seq), add);
                    }
                    outstanding[c].push(cmd.clone());
                    log.push(cmd);
                }
                Op::Retry(c, k) if !outstanding[c].is_empty() => {
                    let k = k % outstanding[c].len();
                    log.push(outstanding[c][k].clone());
                }
                Op::Answer(c, k) if !outstanding[c].is_empty() => {
                    let k = k % outstanding[c].len();
                    if let SessionCommand::Apply { seq, .. } = outstanding[c].remove(k) {
                        clients[c].answered(seq);
                    }
                }
                _ => {}
            }
        }
        let mut a = Sessions::new(Counter::default(), SessionLimits::default());
        let mut b = Sessions::new(Counter::default(), SessionLimits::default());
        let cut = cut.index(log.len() + 1);
        let mut first: BTreeMap<(u64, u64), SessionResponse<u64>> = BTreeMap::new();
        for (i, cmd) in log.iter().enumerate() {
            if i == cut {
                b.read_snapshot(&mut &snapshot(&a)[..]).unwrap();
            }
            let index = i as u64 + 1;
            let r = a.apply(index, cmd.clone());
            if i >= cut {
                prop_assert_eq!(&b.apply(index, cmd.clone()), &r);
            }
            if let SessionCommand::Apply { session, seq, .. } = cmd {
                // Retries only ever target unanswered commands: never refused.
                prop_assert!(matches!(r, SessionResponse::Applied(_)), "{:?}", r);
                let was = first.entry((*session, *seq)).or_insert_with(|| r.clone());
                prop_assert_eq!(&*was, &r, "a retry got another answer");
            }
        }
        if cut == log.len() {
            b.read_snapshot(&mut &snapshot(&a)[..]).unwrap();
        }
        prop_assert_eq!(a.inner().0, adds.values().sum::<u64>(), "each command once");
        prop_assert_eq!(snapshot(&a), snapshot(&b));
    }
}

/// One entry of a session log whose stamps come from several clocks.
#[derive(Clone, Debug)]
enum Stamped {
    Register,
    /// A command of the k-th session registered so far (an expired one included).
    Apply(usize),
    KeepAlive(usize),
    Close(usize),
}

fn stamped() -> impl Strategy<Value = (Stamped, i64)> {
    let kind = prop_oneof![
        2 => Just(Stamped::Register),
        4 => (0..8usize).prop_map(Stamped::Apply),
        2 => (0..8usize).prop_map(Stamped::KeepAlive),
        1 => (0..8usize).prop_map(Stamped::Close),
    ];
    // A clock up to 150 ms behind or ahead of the log's steady 10 ms per entry (the
    // expiry is 100 ms): leaders' clocks disagree, and log time must not go back.
    (kind, -150..150i64)
}

/// Log time and expiry as the module documents them, written out plainly.
#[derive(Default)]
struct Model {
    now: u64,
    /// Open sessions and when each was last active.
    open: BTreeMap<SessionId, u64>,
}

impl Model {
    const EXPIRY: u64 = 100;
    const MAX: usize = 4;

    /// Moves log time and returns the sessions that expire at this entry.
    fn tick(&mut self, at: u64) -> BTreeSet<SessionId> {
        self.now = self.now.max(at);
        let now = self.now;
        let gone: BTreeSet<SessionId> = self
            .open
            .iter()
            .filter(|(_, active)| now - **active > Self::EXPIRY)
            .map(|(id, _)| *id)
            .collect();
        self.open.retain(|id, _| !gone.contains(id));
        gone
    }
}

proptest! {
    #[test]
    fn expiry_follows_log_time_and_is_the_same_on_every_replica(
        entries in prop::collection::vec(stamped(), 1..300),
        cuts in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
    ) {
        let limits = SessionLimits { max_sessions: Model::MAX, max_pending: 64, expiry: Duration::from_millis(Model::EXPIRY) };
        let mut model = Model::default();
        let mut registered: Vec<SessionId> = Vec::new();
        let mut seqs: BTreeMap<SessionId, u64> = BTreeMap::new();
        let mut log = Vec::new();
        for (i, (kind, skew)) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            let at = (1_000 + 10 * i as i64 + skew) as u64;
            let pick = |k: usize| registered.get(k % registered.len().max(1)).copied().unwrap_or(999);
            let cmd = match kind {
                Stamped::Register => SessionCommand::Register { at_ms: at },
                Stamped::Apply(k) => {
                    let session = pick(*k);
                    let seq = seqs.entry(session).or_insert(0);
                    *seq += 1;
                    // Every answer seen: only the latest response is kept.
                    SessionCommand::Apply { session, seq: *seq, acked: *seq, at_ms: at, command: 1 }
                }
                Stamped::KeepAlive(k) => SessionCommand::KeepAlive { session: pick(*k), at_ms: at },
                Stamped::Close(k) => SessionCommand::Close { session: pick(*k), at_ms: at },
            };
            if matches!(kind, Stamped::Register) {
                registered.push(index);
            }
            log.push(cmd);
        }

        let mut a = Sessions::new(Counter::default(), limits.clone());
        let (mut b, mut c) = (Sessions::new(Counter::default(), limits.clone()), Sessions::new(Counter::default(), limits.clone()));
        let (cut_b, cut_c) = (cuts.0.index(log.len()), cuts.1.index(log.len()));
        let mut applied = 0u64;
        for (i, cmd) in log.iter().enumerate() {
            if i == cut_b { b.read_snapshot(&mut &snapshot(&a)[..]).unwrap(); }
            if i == cut_c { c.read_snapshot(&mut &snapshot(&a)[..]).unwrap(); }
            let index = i as u64 + 1;
            let r = a.apply(index, cmd.clone());

            // What the model says this entry does.
            let (at, target) = match cmd {
                SessionCommand::Register { at_ms } => (*at_ms, None),
                SessionCommand::Apply { session, at_ms, .. }
                | SessionCommand::KeepAlive { session, at_ms }
                | SessionCommand::Close { session, at_ms } => (*at_ms, Some(*session)),
                SessionCommand::Direct(_) => unreachable!(),
            };
            let expired = model.tick(at);
            let expected = match (cmd, target) {
                (SessionCommand::Register { .. }, _) if model.open.len() >= Model::MAX => {
                    SessionResponse::Refused(SessionError::TooManySessions { open: Model::MAX })
                }
                (SessionCommand::Register { .. }, _) => {
                    model.open.insert(index, model.now);
                    SessionResponse::Registered(index)
                }
                (_, Some(s)) if !model.open.contains_key(&s) => {
                    SessionResponse::Refused(SessionError::UnknownSession(s))
                }
                (SessionCommand::Close { .. }, Some(s)) => {
                    model.open.remove(&s);
                    SessionResponse::Done
                }
                (SessionCommand::KeepAlive { .. }, Some(s)) => {
                    model.open.insert(s, model.now);
                    SessionResponse::Done
                }
                (_, Some(s)) => {
                    model.open.insert(s, model.now);
                    applied += 1;
                    SessionResponse::Applied(applied)
                }
                _ => unreachable!(),
            };
            prop_assert_eq!(&r, &expected, "entry {} ({:?}); expired here: {:?}", index, cmd, expired);
            prop_assert_eq!(a.open_sessions(), model.open.len(), "entry {}", index);
            prop_assert_eq!(a.table().now_ms(), model.now);
            for (replica, cut) in [(&mut b, cut_b), (&mut c, cut_c)] {
                if i >= cut {
                    prop_assert_eq!(&replica.apply(index, cmd.clone()), &r, "a restored replica at entry {}", index);
                    prop_assert_eq!(replica.open_sessions(), a.open_sessions());
                }
            }
        }
        prop_assert_eq!(snapshot(&a), snapshot(&b));
        prop_assert_eq!(snapshot(&a), snapshot(&c));
    }
}

type Node = RaftHandle<Sessions<Counter>>;
type SessionCluster = Cluster<Sessions<Counter>, FileStorage, MemTransport>;

/// Three nodes on FileStorage under `dir`, over `net`, each a session-wrapped counter.
async fn start(dir: &Path, net: &MemNetwork, config: RaftConfig) -> SessionCluster {
    let (root, net) = (dir.to_owned(), net.clone());
    Cluster::start(
        ["n1", "n2", "n3"],
        config,
        move |id| FileStorage::open(root.join(id.as_str()), Options::default()).map_err(|e| Error::Storage(e.into())),
        |_| Sessions::new(Counter::default(), SessionLimits::default()),
        move |id| net.transport(id.clone()),
    )
    .await
    .unwrap()
}

/// Registers a session through whichever node leads: the client's side of it, and
/// that leader.
async fn register(cluster: &SessionCluster, deadline: Instant) -> (Session, Node) {
    loop {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();
        match leader.propose(SessionCommand::Register { at_ms: 1 }).await {
            Ok(SessionResponse::Registered(id)) => return (Session::new(id), leader),
            other => assert!(Instant::now() < deadline, "{other:?}"),
        }
    }
}

/// Proposes `cmd` (the same session and sequence number every time) until a leader
/// answers, following leader changes into `leader`.
async fn until_answered(
    cluster: &SessionCluster,
    leader: &mut Node,
    cmd: &SessionCommand<u64>,
    deadline: Instant,
    what: &str,
) -> SessionResponse<u64> {
    loop {
        assert!(Instant::now() < deadline, "{what} never answered");
        match leader.propose(cmd.clone()).await {
            Ok(r) => return r,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Ok(l) = cluster.wait_for_leader(Duration::from_secs(5)).await {
                    *leader = l;
                }
            }
        }
    }
}

/// A write applied while a follower was cut off, retried on that follower once it
/// has caught up through an installed snapshot and become the leader: the retry gets
/// the first answer (the counter as it was then) and the counter does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_retried_after_a_snapshot_install_takes_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new();
    let config = RaftConfig {
        snapshot_interval: 8,
        ..RaftConfig::fast()
    };
    let mut cluster = start(dir.path(), &net, config).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();
    let behind: NodeId = cluster
        .nodes()
        .map(|n| n.id().clone())
        .find(|id| id != first.id())
        .unwrap();
    net.isolate(&behind);
    let (mut session, mut leader) = register(&cluster, deadline).await;
    // 40 writes; the reply of write 7 is "lost" (never marked answered), so its
    // response stays kept, and so does the last one's.
    let mut writes = Vec::new();
    for w in 1..=40u64 {
        let cmd = session.command(w, 1 + w);
        let answer = until_answered(&cluster, &mut leader, &cmd, deadline, &format!("write {w}")).await;
        let SessionCommand::Apply { seq, .. } = cmd else {
            unreachable!()
        };
        if w != 7 && w != 40 {
            session.answered(seq);
        }
        writes.push((cmd, answer));
    }
    let sum: u64 = (1..=40).sum();
    assert_eq!(leader.read(()).await.unwrap(), sum);
    // The log holding those writes is compacted on the nodes that saw them, so the one
    // that was cut off can only catch up by a snapshot.
    for node in cluster.nodes().filter(|n| *n.id() != behind) {
        node.snapshot_now().await.unwrap();
    }
    net.heal();
    let lagging = cluster.node(&behind).unwrap().clone();
    while lagging.metrics().snapshots_installed == 0 || lagging.read_local(()).await.ok() != Some(sum) {
        assert!(Instant::now() < deadline, "{behind} never caught up by a snapshot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The caught-up node leads, and the retries go to it.
    while cluster.leader().map(|l| l.id().clone()) != Some(behind.clone()) {
        assert!(Instant::now() < deadline, "{behind} never took the lead");
        if let Some(l) = cluster.leader() {
            let _ = l.transfer_leadership(behind.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (w, (cmd, first)) in writes.iter().enumerate() {
        if ![6, 39].contains(&w) {
            continue;
        }
        let again = loop {
            assert!(Instant::now() < deadline, "the retry of write {} never answered", w + 1);
            match lagging.propose(cmd.clone()).await {
                Ok(r) => break r,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(&again, first, "write {} retried after the snapshot install", w + 1);
    }
    assert_eq!(lagging.read(()).await.unwrap(), sum, "no retry took a second effect");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_writes_across_a_killed_leader_take_effect_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new();
    let config = RaftConfig {
        request_timeout: Duration::from_millis(500),
        ..RaftConfig::fast()
    };
    let mut cluster = start(dir.path(), &net, config).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut session, mut leader) = register(&cluster, deadline).await;
    let mut sum = 0;
    let mut unknown = 0;
    for w in 1..=30u64 {
        let cmd = session.command(w, 2 + w);
        sum += w;
        if w % 10 == 5 {
            // The leader dies with this write in flight: its outcome is unknown.
            let l = leader.clone();
            let c = cmd.clone();
            let inflight = tokio::spawn(async move { l.propose(c).await });
            tokio::task::yield_now().await;
            let id = leader.id().clone();
            cluster.kill(&id).await;
            if inflight.await.unwrap().is_err() {
                unknown += 1;
            }
            // A killed node's last write may hold its directory for a moment.
            while let Err(e) = cluster.restart(id.clone()).await {
                assert!(Instant::now() < deadline, "restart {id}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Retry with the same (session, seq) until answered, wherever the leader is.
        let answer = until_answered(&cluster, &mut leader, &cmd, deadline, &format!("write {w}")).await;
        assert!(matches!(answer, SessionResponse::Applied(_)), "write {w}: {answer:?}");
        if w % 3 == 0 {
            // The answer was lost on the way back: the client sends it again, and
            // gets the same answer without a second effect.
            let again = leader.propose(cmd.clone()).await;
            if let Ok(again) = again {
                assert_eq!(again, answer, "write {w} retried");
            }
        }
        let SessionCommand::Apply { seq, .. } = cmd else {
            unreachable!()
        };
        session.answered(seq);
    }
    let total = leader.read(()).await.unwrap();
    assert_eq!(total, sum, "every write once ({unknown} had an unknown outcome first)");
    cluster.stop().await;
}
