//! The configuration center and the registry through faults, on three real servers,
//! through easyraft-client's typed APIs over the binary stream:
//! - watchers long-polling `config_watch` while keys are set, the leader is killed,
//!   the next leader is cut off by a partition, and a namespace is rolled back: every
//!   watcher sees every change, the rollback's included, exactly once and in version
//!   order — the same sequence for all;
//! - an instance that stops heartbeating disappears from every member after its TTL
//!   while the leader is frozen (SIGSTOP) and a new one is elected, again while the
//!   leader is cut off by a partition, and again after the leader is killed; an
//!   instance that keeps heartbeating through all three stays.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft_client::client::{Client, Protocol};
use easyraft_client::services::{Config, ConfigChange, Lease, Read, Registry, Watched};
use support::*;

fn client(ports: &[u16]) -> Client {
    easyraft_client(ports, Protocol::Stream, None)
}

/// Watches `app/` from version 0 until it has seen version `until` (set once known).
async fn watch(config: Config, until: Arc<AtomicU64>) -> Vec<ConfigChange> {
    let mut seen: Vec<ConfigChange> = Vec::new();
    let mut version = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while version < until.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the watch stalled at version {version}");
        match config.watch("app/", version, Duration::from_secs(2)).await {
            Ok(Watched::Changes { changes, version: v }) => {
                seen.extend(changes);
                version = version.max(v);
            }
            Ok(Watched::Resync { .. }) => panic!("the history reaches back to 0: no resync"),
            // The member asked died or is electing: the client already retried
            // elsewhere until its deadline; go on.
            Err(e) => eprintln!("watch at {version}: {e}"),
        }
    }
    seen
}

#[test]
fn t85_every_watcher_sees_every_change_and_the_rollback_in_order_through_a_leader_kill_and_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, net) = start_cluster_relayed(dir.path(), 3);
    let (leader_id, _) = leader(&nodes);
    let ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let until = Arc::new(AtomicU64::new(u64::MAX));
    // One watcher starting on each member (each goes elsewhere when its member dies).
    let watchers: Vec<_> = (0..3)
        .map(|i| {
            let mut order = ports.clone();
            order.rotate_left(i);
            rt.spawn(watch(Config::new(client(&order)), until.clone()))
        })
        .collect();
    let config = Config::new(client(&ports).with_sessions());
    let mut written = Vec::new();
    let dead = nodes.iter().position(|n| n.id == leader_id).unwrap();
    for i in 0..20u64 {
        if i == 10 {
            nodes[dead].kill();
        }
        if i == 13 {
            nodes[dead].restart();
        }
        if i == 15 {
            // The leader is cut off from the other two: they elect a new one, and the
            // writes go on there (the client moves on from the old one).
            net.cut_leader(&nodes);
        }
        if i == 18 {
            net.heal();
        }
        let key = format!("app/k{}", i % 4);
        let value = format!("v{i}");
        let version = rt
            .block_on(config.set(&key, &value))
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        written.push((version, key, Some(value)));
    }
    // Back to the values after the 6th write: k0, k1 from writes 4, 5; k2, k3 from 2, 3.
    let target = written[5].0;
    let back = rt.block_on(config.rollback_prefix("app/", target)).unwrap();
    assert_eq!(back.keys, ["app/k0", "app/k1", "app/k2", "app/k3"]);
    until.store(back.version, Ordering::SeqCst);

    let mut expected: Vec<(u64, String, Option<String>)> = written.clone();
    for (k, from) in [("app/k0", 4), ("app/k1", 5), ("app/k2", 2), ("app/k3", 3)] {
        expected.push((back.version, k.to_string(), written[from].2.clone()));
    }
    for (i, w) in watchers.into_iter().enumerate() {
        let seen = rt.block_on(w).unwrap();
        let seen: Vec<(u64, String, Option<String>)> = seen.into_iter().map(|c| (c.version, c.key, c.value)).collect();
        assert_eq!(
            seen, expected,
            "watcher {i}: every change once, in order, the rollback last"
        );
    }
    // And the store holds the rolled-back values, on the restarted member too.
    let there = Config::new(client(&[nodes[dead].client]));
    let (entries, _) = rt.block_on(there.list("app/", Read::Linearizable)).unwrap();
    let values: BTreeMap<String, String> = entries.into_iter().map(|e| (e.key, e.value)).collect();
    assert_eq!(values["app/k0"], "v4");
    assert_eq!(values["app/k3"], "v3");
}

#[test]
fn t86_a_silent_instance_disappears_after_its_ttl_through_a_freeze_a_partition_and_a_leader_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, net) = start_cluster_relayed(dir.path(), 3);
    let (leader_id, _) = leader(&nodes);
    let ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = Registry::new(client(&ports).with_sessions());
    let meta = BTreeMap::new();
    // Longer than one attempt's timeout (5 s): a heartbeat sent to the frozen leader
    // waits that long before the client tries another member.
    let ttl = Duration::from_secs(12);
    for (i, t) in [("dead", Duration::from_secs(2)), ("live", ttl)] {
        let lease = rt
            .block_on(registry.register("api", i, &format!("{i}:80"), t, &meta))
            .unwrap();
        assert!(matches!(lease, Lease::Live { .. }), "{lease:?}");
    }
    // "live" heartbeats every 500 ms; "dead" never again.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beats = {
        let (registry, stop) = (registry.clone(), stop.clone());
        rt.spawn(async move {
            let mut lost = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match registry.heartbeat("api", "live", ttl).await {
                    Ok(Lease::Live { .. }) => {}
                    other => lost.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            lost
        })
    };
    // The leader freezes for 3 s: a new one is elected meanwhile.
    let frozen = nodes.iter().position(|n| n.id == leader_id).unwrap();
    nodes[frozen].signal("STOP");
    std::thread::sleep(Duration::from_secs(3));
    nodes[frozen].signal("CONT");
    // Every running member stops listing `dead` (its 2 s lease ran out in log time)
    // and keeps listing "live".
    let only_live = |nodes: &[Proc], dead: &str| {
        for n in nodes.iter().filter(|n| n.running()) {
            let here = Registry::new(client(&[n.client]));
            let listed = wait_for(&format!("{} drops {dead}", n.id), || {
                let l = rt.block_on(here.list("api")).ok()?;
                let ids: Vec<String> = l.into_iter().map(|i| i.instance).collect();
                (!ids.contains(&dead.to_string())).then_some(ids)
            });
            assert_eq!(listed, ["live"], "on {}", n.id);
        }
    };
    only_live(&nodes, "dead");
    // Again with a partition, then with a leader kill: each time an instance registers
    // and goes silent.
    let silent = |name: &str| {
        let lease = rt
            .block_on(registry.register("api", name, &format!("{name}:80"), Duration::from_secs(2), &meta))
            .unwrap();
        assert!(matches!(lease, Lease::Live { .. }), "{lease:?}");
    };
    silent("dead2");
    // The leader is cut off from the other two for 2 s (every process keeps running).
    net.cut_leader(&nodes);
    std::thread::sleep(Duration::from_secs(2));
    net.heal();
    only_live(&nodes, "dead2");
    silent("dead3");
    let (killed, _) = leader(&nodes);
    let k = nodes.iter().position(|n| n.id == killed).unwrap();
    nodes[k].kill();
    only_live(&nodes, "dead3");
    stop.store(true, Ordering::SeqCst);
    let lost = rt.block_on(beats).unwrap();
    assert!(lost.is_empty(), "a heartbeat lost the live lease: {lost:?}");
    assert_eq!(
        rt.block_on(registry.pick("api", "any"))
            .unwrap()
            .map(|i| i.instance)
            .as_deref(),
        Some("live")
    );
}
