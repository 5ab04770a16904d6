//! The lock service over JSON-RPC: fencing tokens, expiry by log time, waiters.

mod support;

use std::time::Duration;

use easyraft::RaftConfig;
use examples::lock;
use examples::runner::LocalCluster;
use serde_json::json;
use support::call;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_release_expiry_fencing_and_waiting() {
    let local = LocalCluster::start(3, None, RaftConfig::fast(), lock::rpc)
        .await
        .unwrap();
    local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let ports = local.ports.clone();
    let p = ports["node2"];
    let a = call(
        &ports,
        p,
        "lock_acquire",
        &[
            ("name", json!("jobs")),
            ("owner", json!("a")),
            ("ttl_ms", json!(60_000)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(a["granted"], json!(true));
    let token_a = a["token"].as_u64().unwrap();
    // Held: b is refused at once without waiting...
    let b = call(
        &ports,
        p,
        "lock_acquire",
        &[("name", json!("jobs")), ("owner", json!("b")), ("ttl_ms", json!(1000))],
    )
    .await
    .unwrap();
    assert_eq!((b["granted"].clone(), b["holder"].clone()), (json!(false), json!("a")));
    // ...or waits until a releases.
    let ports2 = ports.clone();
    let waiter = tokio::spawn(async move {
        call(
            &ports2,
            p,
            "lock_acquire",
            &[
                ("name", json!("jobs")),
                ("owner", json!("b")),
                ("ttl_ms", json!(300)),
                ("wait_ms", json!(10_000)),
            ],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = call(
        &ports,
        p,
        "lock_release",
        &[
            ("name", json!("jobs")),
            ("owner", json!("a")),
            ("token", json!(token_a)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["released"], json!(true));
    let b = waiter.await.unwrap().unwrap();
    assert_eq!(b["granted"], json!(true));
    let token_b = b["token"].as_u64().unwrap();
    assert!(token_b > token_a, "fencing tokens must grow");
    // a's stale token can do nothing.
    let r = call(
        &ports,
        p,
        "lock_renew",
        &[
            ("name", json!("jobs")),
            ("owner", json!("a")),
            ("token", json!(token_a)),
            ("ttl_ms", json!(1000)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r["not_holder"], json!(true));
    // b's 300 ms lease runs out in log time: c gets the lock with a larger token.
    let c = call(
        &ports,
        p,
        "lock_acquire",
        &[
            ("name", json!("jobs")),
            ("owner", json!("c")),
            ("ttl_ms", json!(1000)),
            ("wait_ms", json!(5000)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(c["granted"], json!(true));
    assert!(c["token"].as_u64().unwrap() > token_b);
    // Every node agrees on the holder.
    for port in ports.values() {
        let h = call(&ports, *port, "lock_holder", &[("name", json!("jobs"))])
            .await
            .unwrap();
        assert_eq!(h["holder"]["owner"], json!("c"));
    }
}
