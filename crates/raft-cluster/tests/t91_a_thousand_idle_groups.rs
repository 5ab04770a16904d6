//! 1,000 Raft groups on three hosts (`RaftHost`) start, elect a leader each, spread
//! their leaders over the hosts, quiesce, and then stay quiet: only the hosts'
//! liveness beats flow, one per peer pair per tick.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raft_cluster::testing::Counter;
use raft_cluster::{HostOptions, MemNetwork, RaftConfig, RaftHost};
use raft_core::{MemStorage, Membership, NodeId, Role};
use support::counting::Counting;
use support::ids;

const GROUPS: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t91_a_thousand_groups_on_three_hosts_elect_and_stay_quiet() {
    let config = RaftConfig {
        election_timeout: Duration::from_millis(1_000),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        ..RaftConfig::default()
    };
    let net = MemNetwork::new();
    let messages = Arc::new(AtomicU64::new(0));
    let all = ids(3);
    let mut hosts = Vec::new();
    for id in &all {
        let transport = Counting {
            inner: net.transport(id.clone()),
            sends: Arc::default(),
            messages: messages.clone(),
        };
        let options = HostOptions::default()
            .tick_interval(config.heartbeat_interval)
            .liveness_timeout(config.election_timeout);
        hosts.push(
            RaftHost::start(id.clone(), transport, options)
                .await
                .expect("host starts"),
        );
    }
    let mut groups = Vec::new();
    for g in 1..=GROUPS {
        let mut nodes = Vec::new();
        for host in &hosts {
            let node = host
                .create_group(
                    g,
                    config.clone(),
                    MemStorage::default(),
                    Counter::default(),
                    Some(Membership::with_voters(all.iter().cloned())),
                )
                .await
                .expect("group starts");
            nodes.push(node);
        }
        groups.push(nodes);
    }
    // Every group elects one leader and goes quiet. Generous: a thousand elections
    // on a shared two-core machine.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let settled = groups.iter().all(|nodes| {
            let leaders = nodes.iter().filter(|n| n.view().role == Role::Leader).count();
            leaders == 1 && nodes.iter().all(|n| n.view().quiesced)
        });
        if settled {
            break;
        }
        let quiet = groups.iter().flatten().filter(|n| n.view().quiesced).count();
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 180 s, {quiet} of {} group nodes quiesced",
            groups.len() * 3
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut leads: BTreeMap<NodeId, usize> = BTreeMap::new();
    for nodes in &groups {
        let leader = nodes.iter().find(|n| n.view().role == Role::Leader).expect("a leader");
        *leads.entry(leader.id().clone()).or_default() += 1;
    }
    assert_eq!(leads.len(), 3, "every host leads some of the groups: {leads:?}");

    // Quiet: 40 ticks of 1,000 idle groups carry the hosts' beats (6 a tick) and
    // nothing else to speak of, against 4,000 heartbeats and answers a tick awake.
    let before = messages.load(Ordering::Relaxed);
    tokio::time::sleep(config.heartbeat_interval * 40).await;
    let sent = messages.load(Ordering::Relaxed) - before;
    assert!(
        sent <= 6 * 40 * 2,
        "{sent} messages in 40 ticks of 1,000 quiesced groups"
    );
    let woken = groups.iter().flatten().filter(|n| !n.view().quiesced).count();
    assert_eq!(woken, 0, "idle groups stay quiesced");

    // And a quiet group still takes a write.
    let leader = groups[499]
        .iter()
        .find(|n| n.view().role == Role::Leader)
        .expect("a leader")
        .clone();
    assert_eq!(leader.propose(7).await.expect("a write to a quiesced group"), 7);
    for host in &hosts {
        host.shutdown().await;
    }
}
