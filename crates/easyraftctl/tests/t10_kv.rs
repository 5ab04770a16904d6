//! `easyraftctl kv` against three real `kv` processes, and the endpoint handling
//! (leader hints, dead endpoints, unreachable clusters) and usage errors.

mod support;

use support::{ctl, ctl_json, free_port, Nodes};

fn kv_cluster() -> Nodes {
    Nodes::start("kv", &["kv", "put", "ready", "yes"])
}

#[test]
fn t10_put_get_scan_cas_del_round_trip() {
    let n = kv_cluster();
    let e = n.all();
    let put = ctl_json(&e, 0, &["kv", "put", "app/a", "1"]);
    assert_eq!((put["ok"].clone(), put["key"].clone()), (true.into(), "app/a".into()));
    ctl_json(&e, 0, &["kv", "put", "app/b", "-2"]);
    let got = ctl_json(&e, 0, &["kv", "get", "app/a"]);
    assert_eq!(got["value"], "1");
    let scan = ctl_json(&e, 0, &["kv", "scan", "app/"]);
    let keys: Vec<&str> = scan["pairs"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["app/a", "app/b"]);
    let limited = ctl_json(&e, 0, &["kv", "scan", "app/", "--limit", "1"]);
    assert_eq!(limited["pairs"].as_array().map(Vec::len), Some(1));
    // A CAS whose expectation fails answers "no" (exit 5) and changes nothing.
    let failed = ctl_json(&e, 5, &["kv", "cas", "app/a", "--expected", "0", "--new", "9"]);
    assert_eq!(
        (failed["ok"].clone(), failed["previous"].clone()),
        (false.into(), "1".into())
    );
    ctl_json(&e, 0, &["kv", "cas", "app/a", "--expected", "1", "--new", "2"]);
    ctl_json(&e, 0, &["kv", "cas", "app/new", "--expect-absent", "--new", "x"]);
    assert_eq!(ctl_json(&e, 0, &["kv", "get", "app/a"])["value"], "2");
    let del = ctl_json(&e, 0, &["kv", "del", "app/a"]);
    assert_eq!(del["previous"], "2");
    assert!(ctl_json(&e, 0, &["kv", "get", "app/a"])["value"].is_null());
    // A stale read answers from any node.
    assert_eq!(
        ctl_json(&n.endpoints[2], 0, &["kv", "get", "--stale", "ready"])["value"],
        "yes"
    );
    // The table form.
    let table = ctl(&["--endpoints", &e, "kv", "get", "app/b"]).expect(0);
    assert_eq!(table.stdout, "KEY    VALUE\napp/b  -2\n");
}

#[test]
fn t20_a_follower_alone_in_endpoints_redirects_to_the_leader() {
    let n = kv_cluster();
    let follower = n.follower();
    // Only the follower is listed: the write succeeds only by following its hint.
    let out = ctl(&[
        "--endpoints",
        &follower,
        "-v",
        "-o",
        "json",
        "kv",
        "put",
        "via",
        "follower",
    ])
    .expect(0);
    assert!(out.stderr.contains("following the leader hint"), "{}", out.stderr);
    assert_eq!(ctl_json(&follower, 0, &["kv", "get", "via"])["value"], "follower");
}

#[test]
fn t30_a_dead_endpoint_first_then_the_next_is_tried() {
    let n = kv_cluster();
    let dead = format!("127.0.0.1:{}", free_port());
    let endpoints = format!("{dead},{}", n.all());
    let out = ctl(&["--endpoints", &endpoints, "-v", "kv", "put", "k", "v"]).expect(0);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    assert_eq!(ctl_json(&endpoints, 0, &["kv", "get", "k"])["value"], "v");
}

#[test]
fn t40_all_endpoints_dead_is_exit_3_naming_them() {
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let out = ctl(&["--endpoints", &format!("{a},{b}"), "kv", "get", "k"]).expect(3);
    assert!(out.stderr.contains(&a) && out.stderr.contains(&b), "{}", out.stderr);
    assert!(out.stderr.contains("no endpoint reachable"), "{}", out.stderr);
    // A write too, and cluster status.
    ctl(&["--endpoints", &a, "kv", "cas", "k", "--expect-absent", "--new", "v"]).expect(3);
    let status = ctl(&["--endpoints", &a, "cluster", "status"]).expect(3);
    assert!(status.stderr.contains(&a), "{}", status.stderr);
}

#[test]
fn t50_bad_usage_is_exit_2() {
    for args in [
        vec!["kv"],
        vec!["kv", "frobnicate"],
        vec!["kv", "get"],
        vec!["kv", "cas", "k", "--new", "v"],
        vec!["--output", "xml", "kv", "get", "k"],
        vec!["--timeout", "soon", "kv", "get", "k"],
        vec!["--endpoints", "https://a:1", "kv", "get", "k"],
        vec!["--endpoints", "a:notaport", "kv", "get", "k"],
        vec!["--endpoints", ",", "kv", "get", "k"],
        vec!["--admin-token", "a", "--admin-token-file", "/nope", "member", "list"],
    ] {
        let out = ctl(&args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    let help = ctl(&["--help"]).expect(0);
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
}

#[test]
fn t60_cluster_status_and_health_show_every_node_and_unknown_methods_are_errors() {
    let n = kv_cluster();
    let e = n.all();
    let status = ctl_json(&e, 0, &["cluster", "status"]);
    let nodes = status["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 3, "{status}");
    assert!(nodes.iter().all(|x| x["healthy"] == true), "{status}");
    ctl(&["--endpoints", &e, "cluster", "health"]).expect(0);
    let table = ctl(&["--endpoints", &e, "cluster", "status"]).expect(0);
    assert_eq!(table.stdout.lines().count(), 4, "{}", table.stdout);
    assert!(table.stdout.starts_with("ENDPOINT"), "{}", table.stdout);
    // One node dead: status still answers (exit 0), health says no (exit 5).
    let dead = format!("127.0.0.1:{}", free_port());
    let with_dead = format!("{e},{dead}");
    let s = ctl_json(&with_dead, 0, &["cluster", "status"]);
    assert_eq!(s["nodes"].as_array().map(Vec::len), Some(4));
    ctl(&["--endpoints", &with_dead, "cluster", "health"]).expect(5);
    // The admin API is there (these servers run with admin_insecure).
    let members = ctl(&["--endpoints", &e, "member", "list"]).expect(0);
    assert!(members.stdout.contains("node3"), "{}", members.stdout);
    // These servers serve kv only: another service's methods are a clear error, exit 1.
    for other in [&["lock", "holder", "x"][..], &["config", "get", "x"][..]] {
        let out = ctl(&[&["--endpoints", e.as_str()][..], other].concat()).expect(1);
        assert!(out.stderr.contains("-32601"), "{other:?}: {}", out.stderr);
    }
}

#[test]
fn t70_a_write_to_a_frozen_leader_is_an_unknown_outcome_unless_idempotent() {
    let n = kv_cluster();
    let leader = n.leader();
    let others: Vec<&str> = n
        .endpoints
        .iter()
        .map(String::as_str)
        .filter(|e| *e != leader)
        .collect();
    n.signal(&leader, "-STOP");
    // The connection is accepted (by the kernel) and the request sent; no answer comes.
    // A CAS must not be retried: exit 4, said loudly.
    let cas = [
        "--timeout",
        "1s",
        "kv",
        "cas",
        "frozen",
        "--expect-absent",
        "--new",
        "v",
    ];
    let out = ctl(&[&["--endpoints", leader.as_str()][..], &cas[..]].concat()).expect(4);
    assert!(
        out.stderr.contains("OUTCOME UNKNOWN") && out.stderr.contains(&leader),
        "{}",
        out.stderr
    );
    // A put is idempotent: tried on the others (whose hints may still name the frozen
    // leader) until they elect a new one.
    let endpoints = format!("{leader},{}", others.join(","));
    let put = [
        "--timeout",
        "1s",
        "--deadline",
        "60s",
        "-o",
        "json",
        "kv",
        "put",
        "frozen",
        "v2",
    ];
    let out = ctl(&[&["--endpoints", endpoints.as_str()][..], &put[..]].concat()).expect(0);
    assert_eq!(out.json()["ok"], true);
    n.signal(&leader, "-CONT");
    assert_eq!(ctl_json(&n.all(), 0, &["kv", "get", "frozen"])["value"], "v2");
}
