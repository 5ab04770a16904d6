//! The service registry on three servers: instances register with leases through any
//! member, heartbeats keep them, a lease that runs out drops the instance, and
//! `registry_pick` sends a key to the same live instance from every member.

mod support;

use serde_json::{json, Value};
use support::*;

fn instances(port: u16) -> Vec<String> {
    let r = rpc(port, "registry_list", json!({"service": "api"}), None).unwrap_or_else(|e| panic!("{e}"));
    r["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["instance"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn t60_instances_register_heartbeat_expire_and_keys_are_picked_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), 3);
    let (_, port) = leader(&nodes);
    let register = |instance: &str, ttl_ms: u64| -> Value {
        let p = json!({"service": "api", "instance": instance, "address": format!("{instance}.internal:80"),
                       "ttl_ms": ttl_ms, "meta": {"zone": "a"}});
        call_leader(port, "registry_register", p, None).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(register("a", 60_000)["ok"], true);
    assert_eq!(register("b", 60_000)["ok"], true);
    assert_eq!(register("short", 1_500)["ok"], true);
    // Every member lists them (linearizable reads), with address and labels.
    for n in &nodes {
        assert_eq!(instances(n.client), ["a", "b", "short"], "on {}", n.id);
    }
    let full = rpc(nodes[0].client, "registry_list", json!({"service": "api"}), None).unwrap();
    assert_eq!(full["instances"][0]["address"], "a.internal:80");
    assert_eq!(full["instances"][0]["meta"]["zone"], "a");

    // A key goes to the same instance whichever member is asked.
    let pick = |port: u16, key: &str| -> Option<String> {
        let r = rpc(port, "registry_pick", json!({"service": "api", "key": key}), None).unwrap();
        r["instance"].as_str().map(str::to_string)
    };
    let keys: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let first: Vec<Option<String>> = keys.iter().map(|k| pick(nodes[0].client, k)).collect();
    for n in &nodes[1..] {
        let here: Vec<Option<String>> = keys.iter().map(|k| pick(n.client, k)).collect();
        assert_eq!(here, first, "on {}", n.id);
    }

    // `short` is not kept alive: its lease runs out, it is listed nowhere, and only its
    // keys move. `a` heartbeats and stays.
    let hb = call_leader(
        port,
        "registry_heartbeat",
        json!({"service": "api", "instance": "a", "ttl_ms": 60_000}),
        None,
    )
    .unwrap();
    assert_eq!(hb["ok"], true);
    wait_for("the short lease to run out", || {
        (instances(nodes[1].client) == ["a", "b"]).then_some(())
    });
    for (k, before) in keys.iter().zip(&first) {
        let now = pick(nodes[2].client, k);
        match before.as_deref() {
            Some("short") => assert!(matches!(now.as_deref(), Some("a" | "b")), "{k}: {now:?}"),
            _ => assert_eq!(&now, before, "{k} moved though its instance lives"),
        }
    }
    let late = call_leader(
        port,
        "registry_heartbeat",
        json!({"service": "api", "instance": "short", "ttl_ms": 1000}),
        None,
    )
    .unwrap();
    assert_eq!(late["not_registered"], true, "{late}");
    // Deregistering is idempotent; bad params are typed errors.
    let bye = json!({"service": "api", "instance": "b"});
    assert_eq!(
        call_leader(port, "registry_deregister", bye.clone(), None).unwrap()["removed"],
        true
    );
    assert_eq!(
        call_leader(port, "registry_deregister", bye, None).unwrap()["removed"],
        false
    );
    let bad = call_leader(port, "registry_register", json!({"service": "", "instance": "x"}), None);
    assert!(bad.is_err(), "{bad:?}");
    let services = rpc(port, "registry_services", json!({}), None).unwrap();
    assert_eq!(services["services"], json!({"api": 1}));
}
