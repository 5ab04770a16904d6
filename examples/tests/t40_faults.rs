//! Each service under concurrent clients with a leader kill in the middle, on disk.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use easyraft::{RaftConfig, StateMachine};
use examples::runner::{ApiBuilder, LocalCluster};
use examples::{config, kv, lock};
use serde_json::json;
use support::call;

async fn start<SM: StateMachine + Default>(api: ApiBuilder<SM>) -> (LocalCluster<SM>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalCluster::start(3, Some(dir.path().into()), RaftConfig::fast(), api)
        .await
        .unwrap();
    local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    (local, dir)
}

/// Kills the leader after `after`, restarts it `down` later.
async fn kill_leader_then_restart<SM: StateMachine + Default>(
    local: &mut LocalCluster<SM>,
    after: Duration,
    down: Duration,
) {
    tokio::time::sleep(after).await;
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let id = leader.id().to_string();
    local.kill(&id).await;
    tokio::time::sleep(down).await;
    local.restart(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_no_acknowledged_write_is_lost_across_a_leader_kill() {
    let (mut local, _dir) = start(kv::rpc).await;
    let ports = local.ports.clone();
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..8 {
        let (ports, acked) = (ports.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let first = ports.values().nth(c % 3).copied().unwrap();
            for i in 0..40 {
                let (k, v) = (format!("c{c}/k{i}"), format!("v{i}"));
                if call(&ports, first, "kv_put", &[("key", json!(k)), ("value", json!(v))])
                    .await
                    .is_ok()
                {
                    acked.lock().unwrap().insert(k, v);
                }
            }
        }));
    }
    kill_leader_then_restart(&mut local, Duration::from_millis(150), Duration::from_millis(300)).await;
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 200, "too few writes acknowledged: {}", acked.len());
    for port in ports.values() {
        let r = call(
            &ports,
            *port,
            "kv_scan",
            &[("prefix", json!("c")), ("limit", json!(10_000))],
        )
        .await
        .unwrap();
        let got: BTreeMap<String, String> = r["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["key"].as_str().unwrap().to_string(),
                    p["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (k, v) in &acked {
            assert_eq!(got.get(k), Some(v), "acknowledged {k} lost on port {port}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_fencing_tokens_never_go_backwards_at_the_resource() {
    let (mut local, _dir) = start(lock::rpc).await;
    let ports = local.ports.clone();
    // The protected resource: accepts a write only with a token at least as new as
    // the newest it has seen. Two holders at once would show up as a stale token.
    let resource: Arc<Mutex<(u64, Vec<u64>)>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..4 {
        let (ports, resource) = (ports.clone(), resource.clone());
        clients.push(tokio::spawn(async move {
            let owner = format!("client{c}");
            let port = ports.values().nth(c % 3).copied().unwrap();
            let mut held = 0;
            for _ in 0..8 {
                let p = [
                    ("name", json!("db")),
                    ("owner", json!(owner)),
                    ("ttl_ms", json!(2000)),
                    ("wait_ms", json!(15_000)),
                ];
                let Ok(r) = call(&ports, port, "lock_acquire", &p).await else {
                    continue;
                };
                if r["granted"] != json!(true) {
                    continue;
                }
                let token = r["token"].as_u64().unwrap();
                {
                    let mut res = resource.lock().unwrap();
                    assert!(token > res.0, "{owner} wrote with token {token} after {}", res.0);
                    res.0 = token;
                    res.1.push(token);
                }
                held += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _ = call(
                    &ports,
                    port,
                    "lock_release",
                    &[("name", json!("db")), ("owner", json!(owner)), ("token", json!(token))],
                )
                .await;
            }
            held
        }));
    }
    kill_leader_then_restart(&mut local, Duration::from_millis(150), Duration::from_millis(300)).await;
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    let tokens = resource.lock().unwrap().1.clone();
    assert!(total >= 16, "too few grants: {total}");
    assert_eq!(
        tokens.iter().collect::<BTreeSet<_>>().len(),
        tokens.len(),
        "a token was granted twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_watcher_sees_every_acknowledged_version_in_order() {
    let (mut local, _dir) = start(config::rpc).await;
    let ports = local.ports.clone();
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let writer = {
        let (ports, acked) = (ports.clone(), acked.clone());
        tokio::spawn(async move {
            let port = ports["node1"];
            for i in 0..60 {
                let p = [
                    ("key", json!(format!("app/k{}", i % 7))),
                    ("value", json!(i.to_string())),
                ];
                if let Ok(r) = call(&ports, port, "config_set", &p).await {
                    acked.lock().unwrap().push(r["version"].as_u64().unwrap());
                }
            }
        })
    };
    let watcher = {
        let ports = ports.clone();
        tokio::spawn(async move {
            // The watcher hops between nodes (as if reconnecting), resuming from the
            // last version it saw.
            let mut seen = Vec::new();
            let mut version = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
            let all: Vec<u16> = ports.values().copied().collect();
            let mut hop = 0;
            while tokio::time::Instant::now() < deadline {
                hop += 1;
                let p = [
                    ("prefix", json!("app/")),
                    ("version", json!(version)),
                    ("timeout_ms", json!(300)),
                ];
                let Ok(r) = call(&ports, all[hop % all.len()], "config_watch", &p).await else {
                    continue;
                };
                for c in r["changes"].as_array().unwrap() {
                    let v = c["version"].as_u64().unwrap();
                    assert!(v > version, "versions out of order: {v} after {version}");
                    version = v;
                    seen.push(v);
                }
                if seen.len() >= 60 {
                    break;
                }
            }
            seen
        })
    };
    kill_leader_then_restart(&mut local, Duration::from_millis(150), Duration::from_millis(300)).await;
    writer.await.unwrap();
    let seen: BTreeSet<u64> = watcher.await.unwrap().into_iter().collect();
    for v in acked.lock().unwrap().iter() {
        assert!(seen.contains(v), "watcher missed acknowledged version {v}");
    }
}
