//! `easyraftctl config` against three real `easyraft-server`s serving the config service.

mod support;

use support::{ctl, ctl_command, ctl_json, finish, Nodes};

#[test]
fn t10_set_get_list_history_and_delete_with_versions() {
    let n = Nodes::start("config", &["config", "get", "ready"]);
    let e = n.all();
    let v1 = ctl_json(&e, 0, &["config", "set", "app/db/url", "pg://a"])["version"]
        .as_u64()
        .expect("a version");
    let v2 = ctl_json(&e, 0, &["config", "set", "app/db/url", "pg://b"])["version"]
        .as_u64()
        .expect("a version");
    assert!(v2 > v1);
    ctl_json(&e, 0, &["config", "set", "other/x", "1"]);
    let g = ctl_json(&e, 0, &["config", "get", "app/db/url"]);
    assert_eq!((g["value"].clone(), g["version"].as_u64()), ("pg://b".into(), Some(v2)));
    let list = ctl_json(&e, 0, &["config", "get", "--prefix", "app/"]);
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(1), "{list}");
    let del = ctl_json(&e, 0, &["config", "del", "app/db/url"])["version"].as_u64();
    // The history under app/: both sets and the delete, oldest first, with versions.
    let h = ctl_json(&e, 0, &["config", "history", "app/"]);
    let versions: Vec<u64> = h["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x["version"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(
        versions,
        [Some(v1), Some(v2), del].into_iter().flatten().collect::<Vec<_>>(),
        "{h}"
    );
    let since = ctl_json(&e, 0, &["config", "history", "app/", "--since", &v1.to_string()]);
    assert_eq!(since["changes"].as_array().map(Vec::len), Some(2), "{since}");
    let table = ctl(&["--endpoints", &e, "config", "history", "app/"]).expect(0);
    assert!(table.stdout.contains("(deleted)"), "{}", table.stdout);
}

#[test]
fn t20_watch_prints_each_change_after_a_version_as_json_lines() {
    let n = Nodes::start("config", &["config", "get", "ready"]);
    let f = n.follower();
    let e = format!("{f},{}", n.all());
    let from = ctl_json(&e, 0, &["config", "set", "svc/before", "0"])["version"]
        .as_u64()
        .expect("a version")
        .to_string();
    let watcher = ctl_command(&[
        "--endpoints",
        &e,
        "-o",
        "json",
        "config",
        "watch",
        "svc/",
        "--from",
        &from,
        "--count",
        "2",
        "--poll",
        "2s",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start the watch");
    ctl_json(&e, 0, &["config", "set", "svc/a", "1"]);
    ctl_json(&e, 0, &["config", "del", "svc/a"]);
    let out = finish(watcher).expect(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{err}: {l:?}")))
        .collect();
    assert_eq!(events.len(), 2, "{}", out.stdout);
    assert_eq!(
        (events[0]["key"].clone(), events[0]["value"].clone()),
        ("svc/a".into(), "1".into())
    );
    assert_eq!(events[1]["deleted"], true);
}

#[test]
fn t30_rollback_of_a_key_and_of_a_namespace_is_one_new_version_a_watch_sees() {
    let n = Nodes::start("config", &["config", "get", "ready"]);
    let e = n.all();
    ctl_json(&e, 0, &["config", "set", "app/db", "pg://good"]);
    ctl_json(&e, 0, &["config", "set", "app/cache", "on"]);
    let good = ctl_json(&e, 0, &["config", "set", "other/x", "1"])["version"]
        .as_u64()
        .expect("a version");
    // A bad deploy after version `good`.
    ctl_json(&e, 0, &["config", "set", "app/db", "pg://bad"]);
    ctl_json(&e, 0, &["config", "set", "app/new", "oops"]);
    ctl_json(&e, 0, &["config", "del", "app/cache"]);
    let to = good.to_string();

    // One key.
    let one = ctl_json(&e, 0, &["config", "rollback", "app/db", "--to", &to]);
    assert_eq!(one["keys"], serde_json::json!(["app/db"]), "{one}");
    assert_eq!(ctl_json(&e, 0, &["config", "get", "app/db"])["value"], "pg://good");
    assert_eq!(ctl_json(&e, 0, &["config", "get", "app/new"])["value"], "oops");
    let after_one = one["version"].as_u64().expect("a version");

    // The namespace: app/new did not exist at `good`, app/cache did; app/db is back
    // already and is not written again.
    let all = ctl_json(&e, 0, &["config", "rollback", "app/", "--prefix", "--to", &to]);
    assert_eq!(all["keys"], serde_json::json!(["app/cache", "app/new"]), "{all}");
    let list = ctl_json(&e, 0, &["config", "get", "--prefix", "app/"]);
    let entries: Vec<(String, String)> = list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|x| {
            (
                x["key"].as_str().unwrap_or("").into(),
                x["value"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [("app/cache".into(), "on".into()), ("app/db".into(), "pg://good".into())],
        "{list}"
    );
    // A watcher that saw the first rollback sees the second as changes at one version.
    let h = ctl_json(&e, 0, &["config", "history", "app/", "--since", &after_one.to_string()]);
    let changes = h["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes.len(), 2, "{h}");
    assert!(changes.iter().all(|c| c["version"] == all["version"]), "{h}");
    // A version from the future is refused, and nothing changes.
    let bad = ctl(&[
        "--endpoints",
        &e,
        "config",
        "rollback",
        "app/",
        "--prefix",
        "--to",
        "999999",
    ])
    .expect(1);
    assert!(bad.stderr.contains("newer than the store"), "{}", bad.stderr);
    assert_eq!(ctl_json(&e, 0, &["config", "get", "app/db"])["value"], "pg://good");
}
