//! What is refused, with typed errors, and changes nothing: a bad config file, an
//! unknown flag, an unreachable join, a wrong admin token, a second concurrent
//! membership change, removing the last voter.

mod support;

use serde_json::json;
use support::*;

#[test]
fn t30_a_bad_config_file_names_the_key_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "id = \"node1\"\n\n[raft]\nelection_timeout = \"soon\"\n").unwrap();
    let out = bin().arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4") && err.contains("raft.election_timeout"),
        "{err}"
    );

    std::fs::write(&path, "id = \"node1\"\npromote_lagg = 3\n").unwrap();
    let out = bin().arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2") && err.contains("promote_lagg"), "{err}");
}

#[test]
fn t31_an_unknown_flag_is_an_error() {
    let out = bin().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn t32_flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "id = \"node1\"\njoin = \"127.0.0.1:1\"\npromote_lag = 5\ncluster_id = \"file\"\n[raft]\nheartbeat_interval = \"50ms\"\n").unwrap();
    let out = bin()
        .arg("--config")
        .arg(&path)
        .args(["--promote-lag", "9", "--print-config"])
        .env("EASYRAFT_PROMOTE_LAG", "7")
        .env("EASYRAFT_CLUSTER_ID", "env")
        .env("EASYRAFT_RAFT_ELECTION_TIMEOUT", "700ms")
        // Other tools' variables share the prefix: they name no key and are ignored.
        .env("EASYRAFT_ENDPOINTS", "127.0.0.1:7000")
        .env("EASYRAFT_RAFT_NO_SUCH_KNOB", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "promote_lag = 9",
        "cluster_id = \"env\"",
        "election_timeout = \"700ms\"",
        "heartbeat_interval = \"50ms\"",
    ] {
        assert!(printed.contains(line), "{line} not in\n{printed}");
    }
    let out = bin()
        .arg("--config")
        .arg(&path)
        .env("EASYRAFT_PROMOTE_LAG", "lots")
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EASYRAFT_PROMOTE_LAG"));
    // Running (not printing), the ignored names are reported, in case of a typo.
    let out = bin()
        .arg("--config")
        .arg(&path)
        .env("EASYRAFT_PROMOTE_LAGG", "7")
        .env("EASYRAFT_ENDPOINTS", "127.0.0.1:7000")
        .args(["--set", "promote_lag=oops"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ignoring EASYRAFT_PROMOTE_LAGG"), "{err}");
    // easyraftctl's variables, set in the same shell, are not worth a note.
    assert!(!err.contains("EASYRAFT_ENDPOINTS"), "{err}");
}

#[test]
fn t33_an_unreachable_join_fails_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (peer, client) = (free_port(), free_port());
    let cfg = write_config(dir.path(), "node9", peer, client, "");
    let dead = format!("127.0.0.1:{}", free_port());
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["--join", &dead])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("join through") && err.contains(&dead), "{err}");
}

#[test]
fn t34_admin_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), 3);
    let (_, port) = leader(&nodes);
    let dead_peer = format!("127.0.0.1:{}", free_port());

    // A wrong or missing admin token: 401, -32030, nothing changed.
    for token in [Some("wrong"), None] {
        let (status, body) = rpc_raw(
            port,
            "admin_add_learner",
            json!({"id": "intruder", "peer": dead_peer}),
            token,
        )
        .unwrap();
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], -32030, "{body}");
    }
    let leader_port = wait_for("the leader's admin_members", || {
        let m = rpc(port, "admin_members", json!({}), Some(ADMIN_TOKEN)).ok()?;
        let l = m["leader"].as_str()?;
        nodes.iter().find(|n| n.id == l).map(|n| n.client)
    });
    assert_eq!(roles(leader_port).len(), 3);
    assert!(!roles(leader_port).contains_key("intruder"));

    // Unknown members cannot be removed or promoted.
    let e = call_leader(leader_port, "admin_remove", json!({"id": "ghost"}), Some(ADMIN_TOKEN)).unwrap_err();
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!(-32031), json!("unknown_member")),
        "{e}"
    );

    // A replace whose new node never catches up holds the membership lock while it
    // waits: a second change meanwhile is refused with change_in_progress.
    let replacing = std::thread::spawn(move || {
        call_leader(
            leader_port,
            "admin_replace",
            json!({"old": "node3", "id": "node9", "peer": dead_peer}),
            Some(ADMIN_TOKEN),
        )
    });
    wait_for("node9 added as a learner by the replace", || {
        (roles(leader_port).get("node9").map(String::as_str) == Some("learner")).then_some(())
    });
    let other = format!("127.0.0.1:{}", free_port());
    let e = rpc(
        leader_port,
        "admin_add_learner",
        json!({"id": "node8", "peer": other}),
        Some(ADMIN_TOKEN),
    )
    .unwrap_err();
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!(-32031), json!("change_in_progress")),
        "{e}"
    );
    assert!(!roles(leader_port).contains_key("node8"));
    // The replace gives up (not_caught_up) and undoes its learner: node3 stays.
    let outcome = replacing.join().unwrap().unwrap_err();
    assert_eq!(outcome["data"]["reason"], "not_caught_up", "{outcome}");
    let r = wait_for("node9 removed again", || {
        let r = roles(leader_port);
        (!r.contains_key("node9")).then_some(r)
    });
    assert_eq!(r.get("node3").map(String::as_str), Some("voter"), "{r:?}");
}

#[test]
fn t35_the_last_voter_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), 1);
    let (_, port) = leader(&nodes);
    let e = call_leader(port, "admin_remove", json!({"id": "node1"}), Some(ADMIN_TOKEN)).unwrap_err();
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!(-32031), json!("last_voter")),
        "{e}"
    );
    assert_eq!(roles(port).get("node1").map(String::as_str), Some("voter"));
}

#[test]
fn t36_a_missing_certificate_file_is_named_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let (peer, client) = (free_port(), free_port());
    let cfg = write_config(
        dir.path(),
        "node1",
        peer,
        client,
        &format!("initial_cluster = \"node1=127.0.0.1:{peer}\"\n[tls]\ncert = \"/nonexistent/node.crt\"\nkey = \"/nonexistent/node.key\"\n"),
    );
    let out = bin().arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.cert") && err.contains("/nonexistent/node.crt"),
        "{err}"
    );
}
