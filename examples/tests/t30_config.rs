//! The configuration center over JSON-RPC: versions, lists and watches that miss
//! nothing across reconnects.

mod support;

use std::time::Duration;

use easyraft::RaftConfig;
use examples::config;
use examples::runner::LocalCluster;
use serde_json::json;
use support::call;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_get_list_and_watch_from_a_version() {
    let local = LocalCluster::start(3, None, RaftConfig::fast(), config::rpc)
        .await
        .unwrap();
    local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let ports = local.ports.clone();
    let p = ports["node3"];
    let v1 = call(
        &ports,
        p,
        "config_set",
        &[("key", json!("app/db/url")), ("value", json!("pg://a"))],
    )
    .await
    .unwrap()["version"]
        .as_u64()
        .unwrap();
    let got = call(&ports, p, "config_get", &[("key", json!("app/db/url"))])
        .await
        .unwrap();
    assert_eq!(
        (got["value"].clone(), got["version"].as_u64()),
        (json!("pg://a"), Some(v1))
    );
    // A watcher from v1 blocks until a change under its prefix arrives.
    let ports2 = ports.clone();
    let watcher = tokio::spawn(async move {
        call(
            &ports2,
            p,
            "config_watch",
            &[
                ("prefix", json!("app/")),
                ("version", json!(v1)),
                ("timeout_ms", json!(10_000)),
            ],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    call(
        &ports,
        p,
        "config_set",
        &[("key", json!("other/x")), ("value", json!("1"))],
    )
    .await
    .unwrap();
    let v2 = call(
        &ports,
        p,
        "config_set",
        &[("key", json!("app/db/pool")), ("value", json!("10"))],
    )
    .await
    .unwrap()["version"]
        .as_u64()
        .unwrap();
    let w = watcher.await.unwrap().unwrap();
    let changes = w["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{w}");
    assert_eq!(
        (changes[0]["key"].clone(), changes[0]["version"].as_u64()),
        (json!("app/db/pool"), Some(v2))
    );
    // A client that was away since v1 gets every change it missed, in order.
    call(&ports, p, "config_delete", &[("key", json!("app/db/url"))])
        .await
        .unwrap();
    let w = call(
        &ports,
        p,
        "config_watch",
        &[
            ("prefix", json!("app/")),
            ("version", json!(v1)),
            ("timeout_ms", json!(100)),
        ],
    )
    .await
    .unwrap();
    let keys: Vec<_> = w["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].clone(), c["deleted"].clone()))
        .collect();
    assert_eq!(
        keys,
        vec![(json!("app/db/pool"), json!(false)), (json!("app/db/url"), json!(true))]
    );
    // Nothing new: the watch times out empty with the current version.
    let w = call(
        &ports,
        p,
        "config_watch",
        &[
            ("prefix", json!("app/")),
            ("version", w["version"].clone()),
            ("timeout_ms", json!(100)),
        ],
    )
    .await
    .unwrap();
    assert!(w["changes"].as_array().unwrap().is_empty());
    let list = call(&ports, ports["node1"], "config_list", &[("prefix", json!("app/"))])
        .await
        .unwrap();
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
}
