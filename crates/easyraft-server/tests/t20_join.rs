//! A fourth node joins a running cluster with `--join`, is promoted; then the old
//! leader is transferred away and removed through admin calls, while writes flow, and
//! no acknowledged write is lost. A dead member is replaced by a node started with
//! `--join --replaces`.

mod support;

use serde_json::json;
use support::*;

#[test]
fn t20_a_node_joins_is_promoted_and_the_old_leader_is_moved_away_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (_, first) = leader(&nodes);
    call_leader(first, "kv_put", json!({"key": "before", "value": "0"}), None).unwrap();

    // A writer that keeps writing through whichever node answers, following hints.
    let (peer, client) = (free_port(), free_port());
    let mut ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    ports.push(client);
    let writer = Writer::start(ports);

    // node4 joins through node1's client port.
    let cfg = write_config(dir.path(), "node4", peer, client, "");
    let join = format!("127.0.0.1:{}", nodes[0].client);
    nodes.push(spawn(dir.path(), "node4", peer, client, cfg, &["--join", &join]));
    wait_for("node4 to be a voter", || {
        let (_, l) = leader(&nodes[..3]);
        let r = roles(l);
        (r.get("node4").map(String::as_str) == Some("voter")).then_some(())
    });

    // Move the leader away from the old one and remove it.
    let (old, old_port) = leader(&nodes);
    let moved = call_leader(old_port, "admin_transfer_leader", json!({}), Some(ADMIN_TOKEN))
        .unwrap_or_else(|e| panic!("transfer: {e}"));
    assert!(moved["leader"].is_string(), "{moved}");
    let rest: Vec<u16> = nodes.iter().filter(|n| n.id != old).map(|n| n.client).collect();
    wait_for("a leader other than the old one", || {
        let s = rpc(rest[0], "admin_members", json!({}), Some(ADMIN_TOKEN)).ok()?;
        (s["leader"].is_string() && s["leader"] != old.as_str()).then_some(())
    });
    call_leader(rest[0], "admin_remove", json!({"id": old}), Some(ADMIN_TOKEN))
        .unwrap_or_else(|e| panic!("remove: {e}"));
    let after = roles(rest[0]);
    assert!(!after.contains_key(&old), "{after:?}");
    assert_eq!(after.len(), 3, "{after:?}");

    // Writes keep flowing after the change, and every acknowledged one is there, on
    // the new leader and on the joined node.
    let node4 = nodes.iter().find(|n| n.id == "node4").unwrap();
    writer.finish(&[rest[0], node4.client]);
    let before = call_leader(node4.client, "kv_get", json!({"key": "before"}), None).unwrap();
    assert_eq!(before["value"], "0");

    // Restarted on its data, node4 ignores --join (here an address nobody serves: a
    // join attempt would fail and exit) and is back as the voter it was.
    let (peer4, client4, cfg4) = (node4.peer, node4.client, node4.config.clone());
    let i4 = nodes.iter().position(|n| n.id == "node4").unwrap();
    nodes[i4].kill();
    let dead = format!("127.0.0.1:{}", free_port());
    nodes[i4] = spawn(dir.path(), "node4", peer4, client4, cfg4, &["--join", &dead]);
    let again = wait_for("node4 serving again", || {
        rpc(client4, "kv_get", json!({"key": "before"}), None).ok()
    });
    assert_eq!(again["value"], "0", "{}", nodes[i4].log());
    assert_eq!(roles(rest[0]).get("node4").map(String::as_str), Some("voter"));
    assert!(
        !nodes[i4].log().contains("asking the cluster to add"),
        "{}",
        nodes[i4].log()
    );
}

#[test]
fn t25_a_leader_started_with_leave_on_shutdown_hands_over_and_leaves_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (_, first) = leader(&nodes);
    let (peer, client) = (free_port(), free_port());
    let cfg = write_config(dir.path(), "node4", peer, client, "");
    let join = format!("127.0.0.1:{}", nodes[1].client);
    nodes.push(spawn(
        dir.path(),
        "node4",
        peer,
        client,
        cfg,
        &["--join", &join, "--leave-on-shutdown"],
    ));
    wait_for("node4 to be a voter", || {
        (roles(leader(&nodes[..3]).1).get("node4").map(String::as_str) == Some("voter")).then_some(())
    });
    // Make node4 the leader, then stop it: it hands leadership over and leaves.
    call_leader(
        first,
        "admin_transfer_leader",
        json!({"to": "node4"}),
        Some(ADMIN_TOKEN),
    )
    .unwrap();
    wait_for("node4 to lead", || (leader(&nodes).0 == "node4").then_some(()));
    let status = nodes[3].terminate();
    assert!(status.success(), "{status:?}\n{}", nodes[3].log());
    let rest: Vec<u16> = nodes[..3].iter().map(|n| n.client).collect();
    let r = wait_for("node4 gone from the members", || {
        let r = roles(leader(&nodes[..3]).1);
        (!r.contains_key("node4")).then_some(r)
    });
    assert_eq!(r.len(), 3, "{r:?}");
    let put = call_any(&rest, "kv_put", json!({"key": "after", "value": "1"}), None).unwrap();
    assert_eq!(put["ok"], true);
}

#[test]
fn t22_a_dead_leader_is_replaced_by_a_node_started_with_replaces_while_writes_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (leader_id, _) = leader(&nodes);
    let (peer, client) = (free_port(), free_port());
    let mut ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    ports.push(client);
    let writer = Writer::start(ports);
    // The leader dies for good; its replacement joins through a follower.
    let dead = nodes.iter().position(|n| n.id == leader_id).unwrap();
    let dead_id = nodes[dead].id.clone();
    nodes[dead].kill();
    let live = nodes.iter().find(|n| n.id != leader_id).unwrap().client;
    let cfg = write_config(dir.path(), "node4", peer, client, "");
    let join = format!("127.0.0.1:{live}");
    nodes.push(spawn(
        dir.path(),
        "node4",
        peer,
        client,
        cfg,
        &["--join", &join, "--replaces", &dead_id],
    ));
    let r = wait_for("node4 a voter in the place of the dead member", || {
        let r = roles(live);
        (r.get("node4").map(String::as_str) == Some("voter") && !r.contains_key(&dead_id)).then_some(r)
    });
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r.values().all(|role| role == "voter"), "{r:?}");
    writer.finish(&[live, client]);
}
