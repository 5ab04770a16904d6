//! Exactly-once sessions (`raft_cluster::sessions`).
//!
//! The property: whatever the interleaving of clients, retries (a command proposed
//! again any number of times, before or after later ones), acknowledgements and a
//! replica restored from a snapshot taken at any point, (1) every (session, seq)
//! takes effect exactly once, (2) every answer to the same (session, seq) is the
//! first one, and (3) a replica restored from the snapshot and fed the rest of the
//! log ends byte-for-byte identical (sessions, kept responses and all).
//!
//! And through a real cluster: a leader killed while writes are in flight, each write
//! retried with its session until answered, and answered writes sent again (a lost
//! reply), leave the counter at exactly the sum of the writes.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use raft_cluster::sessions::{Session, SessionCommand, SessionLimits, SessionResponse, Sessions};
use raft_cluster::testing::Counter;
use raft_cluster::{Cluster, Error, MemNetwork, RaftConfig, StateMachine};
use raft_storage::{FileStorage, Options};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_writes_across_a_killed_leader_take_effect_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let net = MemNetwork::new();
    let tnet = net.clone();
    let config = RaftConfig {
        request_timeout: Duration::from_millis(500),
        ..RaftConfig::fast()
    };
    let mut cluster = Cluster::start(
        ["n1", "n2", "n3"],
        config,
        move |id| FileStorage::open(root.join(id.as_str()), Options::default()).map_err(|e| Error::Storage(e.into())),
        |_| Sessions::new(Counter::default(), SessionLimits::default()),
        move |id| tnet.transport(id.clone()),
    )
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut leader = cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();
    let registered = loop {
        match leader.propose(SessionCommand::Register { at_ms: 1 }).await {
            Ok(SessionResponse::Registered(id)) => break id,
            other => {
                assert!(tokio::time::Instant::now() < deadline, "{other:?}");
                leader = cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();
            }
        }
    };
    let mut session = Session::new(registered);
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
                assert!(tokio::time::Instant::now() < deadline, "restart {id}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Retry with the same (session, seq) until answered, wherever the leader is.
        let answer = loop {
            assert!(tokio::time::Instant::now() < deadline, "write {w} never answered");
            match leader.propose(cmd.clone()).await {
                Ok(r) => break r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Ok(l) = cluster.wait_for_leader(Duration::from_secs(5)).await {
                        leader = l;
                    }
                }
            }
        };
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
