//! easyraft-client over the binary stream (`Protocol::Stream`, `GET /v1/stream`) against
//! real server processes, as easyraftctl-like callers use it: a lock wait shares the
//! stream with kv writes that complete while it waits; admin calls are refused on a
//! stream opened without the admin token and served with it; and writers in client
//! sessions keep going across a leader kill, each compare-and-set chain applied once
//! per link (a link applied twice would answer "not ok" to its retry, and the chain
//! would stop short or skip).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use easyraft_client::client::{Call, Client, Protocol};
use easyraft_client::policy::CallKind;
use serde_json::json;
use support::*;

fn client(ports: &[u16], admin_token: Option<&str>) -> Client {
    easyraft_client(ports, Protocol::Stream, admin_token)
}

#[test]
fn t80_stream_calls_admin_refusal_and_sessions_across_a_leader_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (leader_id, _) = leader(&nodes);
    let ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // A lock wait and kv writes on the same stream: the writes complete during the wait.
    rt.block_on(async {
        let c = client(&ports, None);
        let acquire = |owner: &str, wait_ms: u64| {
            Call::new(
                "lock_acquire",
                CallKind::Write,
                json!({"name": "l", "owner": owner, "ttl_ms": 60_000, "wait_ms": wait_ms}),
            )
            .with_extra_time(Duration::from_millis(wait_ms))
        };
        let a = c.call(&acquire("a", 0)).await.unwrap();
        assert_eq!(a.result["granted"], true);
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.call(&acquire("b", 60_000)).await })
        };
        for i in 0..20 {
            let put = Call::new(
                "kv_put",
                CallKind::IdempotentWrite,
                json!({"key": format!("w{i}"), "value": "x"}),
            );
            c.call(&put).await.unwrap();
        }
        assert!(!waiter.is_finished(), "b got the lock while a held it");
        let release = Call::new(
            "lock_release",
            CallKind::Write,
            json!({"name": "l", "owner": "a", "token": a.result["token"]}),
        );
        assert_eq!(c.call(&release).await.unwrap().result["released"], true);
        let b = waiter.await.unwrap().unwrap();
        assert_eq!(
            (b.result["granted"].clone(), b.result["owner"].clone()),
            (json!(true), json!("b"))
        );
        assert_eq!(c.stream_pending(), 0);
    });

    // Admin calls: refused without the admin token (the upgrade carried none), served
    // with it.
    rt.block_on(async {
        let members = Call::new("admin_members", CallKind::Read, json!({})).admin();
        match client(&ports, None).call(&members).await {
            Err(easyraft_client::Error::Rpc { code, .. }) => {
                assert_eq!(code, i64::from(easyraft_client::codes::UNAUTHORIZED))
            }
            other => panic!("admin_members without the token answered {other:?}"),
        }
        let wrong = client(&ports, Some("not-the-token")).call(&members).await;
        assert!(matches!(wrong, Err(easyraft_client::Error::Rpc { code, .. }) if code == i64::from(easyraft_client::codes::UNAUTHORIZED)));
        let ok = client(&ports, Some(ADMIN_TOKEN)).call(&members).await.unwrap();
        assert!(ok.result.to_string().contains("node1"), "{}", ok.result);
    });

    // Eight writers in one session, each a chain of compare-and-sets on its own key,
    // all over the stream; the leader is killed while they run.
    const LINKS: u64 = 150;
    let c = client(&ports, None).with_sessions();
    let done = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (c, done) = (c.clone(), done.clone());
            rt.spawn(async move {
                let key = format!("chain{w}");
                for i in 0..LINKS {
                    let expected = if i == 0 { None } else { Some(i.to_string()) };
                    let cas = Call::new(
                        "kv_cas",
                        CallKind::Write,
                        json!({"key": key, "expected": expected, "new": (i + 1).to_string()}),
                    );
                    let reply = c.call(&cas).await.unwrap_or_else(|e| panic!("{key} link {i}: {e}"));
                    assert_eq!(reply.result["ok"], true, "{key} link {i}: {}", reply.result);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Killed once some links are done, while every writer still has a write in flight.
    while done.load(Ordering::Relaxed) < 2 * LINKS {
        std::thread::sleep(Duration::from_millis(5));
    }
    let dead = nodes.iter().position(|n| n.id == leader_id).unwrap();
    nodes[dead].kill();
    let at_kill = done.load(Ordering::Relaxed);
    assert!(at_kill < 8 * LINKS, "the writers were done before the kill");
    rt.block_on(async {
        for w in writers {
            w.await.unwrap();
        }
    });
    assert!(rt.block_on(c.session_id()).is_some());
    assert_eq!(c.stream_pending(), 0);
    let live: Vec<u16> = nodes.iter().filter(|n| n.id != leader_id).map(|n| n.client).collect();
    for w in 0..8 {
        let got = call_any(&live, "kv_get", json!({"key": format!("chain{w}")}), None).unwrap();
        assert_eq!(got["value"], LINKS.to_string(), "chain{w}");
    }
}
