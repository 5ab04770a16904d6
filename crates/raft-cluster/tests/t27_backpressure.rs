//! A leader whose proposals cannot commit holds at most `max_uncommitted_bytes` of
//! them: `propose` past it fails at once with `Error::Backpressure` (nothing was
//! proposed), and succeeds again once the followers catch up.

use std::time::Duration;

use bytes::Bytes;
use raft_cluster::{BoxError, Cluster, Error, MemNetwork, MemTransport, RaftConfig, StateMachine};
use raft_core::{LogIndex, MemStorage};
use tokio::time::{sleep, Instant};

/// Counts the bytes of the commands it applied.
#[derive(Default)]
struct Bytesum(u64);

impl StateMachine for Bytesum {
    type Command = Vec<u8>;
    type Response = u64;
    type Query = ();
    type QueryResponse = u64;
    fn apply(&mut self, _index: LogIndex, cmd: Vec<u8>) -> u64 {
        self.0 += cmd.len() as u64;
        self.0
    }
    fn query(&self, _: ()) -> u64 {
        self.0
    }
    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok(Bytes::copy_from_slice(&self.0.to_be_bytes()))
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        self.0 = u64::from_be_bytes(data.try_into()?);
        Ok(())
    }
}

const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_past_the_uncommitted_cap_fails_with_backpressure_then_succeeds_after_commit() {
    let config = RaftConfig {
        // Long enough that the cut-off leader keeps leading through the test.
        election_timeout: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        max_uncommitted_bytes: 1000,
        ..RaftConfig::fast()
    };
    let net = MemNetwork::new();
    let tnet = net.clone();
    let mut cluster: Cluster<Bytesum, MemStorage, MemTransport> = Cluster::start(
        ["node1", "node2", "node3"],
        config,
        |_| Ok(MemStorage::default()),
        |_| Bytesum::default(),
        move |id| tnet.transport(id.clone()),
    )
    .await
    .expect("cluster starts");
    let leader = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
    leader.propose(vec![1; 10]).await.expect("a first write");

    // Cut the leader off: nothing it appends can commit.
    net.isolate(leader.id());
    let pending: Vec<_> = (0..2)
        .map(|_| {
            let l = leader.clone();
            tokio::spawn(async move { l.propose(vec![2; 300]).await })
        })
        .collect();
    sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let refused = leader.propose(vec![3; 600]).await;
    match &refused {
        Err(e @ Error::Backpressure { uncommitted, limit }) => {
            assert!(e.is_backpressure());
            assert!(!e.is_timeout(), "backpressure is not an unknown outcome");
            assert_eq!(*limit, 1000);
            assert!(*uncommitted > 0 && *uncommitted <= 1000, "{uncommitted}");
        }
        other => panic!("expected backpressure, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not after a timeout"
    );

    // Once the followers hear the leader again, the pending writes commit and room
    // comes back.
    net.heal();
    for t in pending {
        let _ = t.await.expect("proposer");
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let l = cluster.wait_for_leader(PATIENCE).await.expect("a leader");
        match l.propose(vec![4; 600]).await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "no write accepted after the heal: {e}");
                sleep(Duration::from_millis(20)).await;
            }
        }
    }
    cluster.stop().await;
}
