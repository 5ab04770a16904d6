//! The KV service over JSON-RPC on a real 3-node cluster.

mod support;

use std::time::Duration;

use easyraft::RaftConfig;
use examples::kv;
use examples::runner::LocalCluster;
use jsonrpsee::core::client::{ClientT, Error as RpcError};
use serde_json::{json, Value};
use support::{call, client, params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_put_get_cas_scan_delete_and_follower_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let mut local = LocalCluster::start(3, Some(dir.path().into()), RaftConfig::fast(), kv::rpc)
        .await
        .unwrap();
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let ports = local.ports.clone();
    let any = ports["node1"];
    for (k, v) in [("app/a", "1"), ("app/b", "2"), ("other", "3")] {
        let r = call(&ports, any, "kv_put", &[("key", json!(k)), ("value", json!(v))])
            .await
            .unwrap();
        assert_eq!(r["ok"], json!(true));
    }
    // A follower refuses writes with a redirect hint naming the leader and its address.
    let follower = ports.keys().find(|id| id.as_str() != leader.id().as_str()).unwrap();
    let err = client(ports[follower])
        .request::<Value, _>("kv_put", params(&[("key", json!("x")), ("value", json!("y"))]))
        .await
        .unwrap_err();
    let RpcError::Call(e) = err else { panic!("{err:?}") };
    assert_eq!(e.code(), examples::api::NOT_LEADER);
    let data: Value = serde_json::from_str(e.data().unwrap().get()).unwrap();
    assert_eq!(data["leader"], json!(leader.id().as_str()));
    assert_eq!(
        data["address"],
        json!(format!("127.0.0.1:{}", ports[leader.id().as_str()]))
    );
    // Reads are linearizable on a follower too.
    let r = client(ports[follower])
        .request::<Value, _>("kv_get", params(&[("key", json!("app/b"))]))
        .await
        .unwrap();
    assert_eq!(r["value"], json!("2"));
    // CAS: a stale expectation fails and reports the current value; a right one wins.
    let r = call(
        &ports,
        any,
        "kv_cas",
        &[("key", json!("app/a")), ("expected", json!("0")), ("new", json!("9"))],
    )
    .await
    .unwrap();
    assert_eq!((r["ok"].clone(), r["previous"].clone()), (json!(false), json!("1")));
    let r = call(
        &ports,
        any,
        "kv_cas",
        &[("key", json!("app/a")), ("expected", json!("1")), ("new", json!("9"))],
    )
    .await
    .unwrap();
    assert_eq!(r["ok"], json!(true));
    let r = call(&ports, any, "kv_scan", &[("prefix", json!("app/"))])
        .await
        .unwrap();
    assert_eq!(
        r["pairs"],
        json!([{"key": "app/a", "value": "9"}, {"key": "app/b", "value": "2"}])
    );
    call(&ports, any, "kv_delete", &[("key", json!("app/b"))])
        .await
        .unwrap();
    let r = call(&ports, any, "kv_get", &[("key", json!("app/b"))]).await.unwrap();
    assert_eq!(r["value"], Value::Null);
    // Bad params get a JSON-RPC error, not a crash.
    let err = client(any)
        .request::<Value, _>("kv_put", params(&[("key", json!(5))]))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Call(ref e) if e.code() == -32602), "{err:?}");
    let err = client(any)
        .request::<Value, _>("kv_get", params(&[("key", json!("app/a")), ("stale", json!("yes"))]))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Call(ref e) if e.code() == -32602), "{err:?}");
    // A stale read answers from the node's own state: the leader's is current.
    let r = client(ports[leader.id().as_str()])
        .request::<Value, _>("kv_get", params(&[("key", json!("app/a")), ("stale", json!(true))]))
        .await
        .unwrap();
    assert_eq!(r["value"], "9");
    // Kill the leader: the service keeps working and nothing acknowledged is lost.
    local.kill(leader.id().as_str()).await;
    let alive: Vec<u16> = ports
        .iter()
        .filter(|(id, _)| id.as_str() != leader.id().as_str())
        .map(|(_, p)| *p)
        .collect();
    call(
        &ports,
        alive[0],
        "kv_put",
        &[("key", json!("after")), ("value", json!("crash"))],
    )
    .await
    .unwrap();
    for p in &alive {
        let r = call(&ports, *p, "kv_scan", &[("prefix", json!(""))]).await.unwrap();
        assert_eq!(r["pairs"].as_array().unwrap().len(), 3, "{r}");
    }
    local.cluster.stop().await;
}
