//! `easyraftctl` against three real `easyraft-server` processes started from config
//! files, with a writer putting keys through `easyraftctl` all along (every other one
//! over `--protocol stream`): kv through a follower (over HTTP and the stream), `member list`, `cluster status`, a wrong admin token that changes nothing,
//! `snapshot compact`, a dead member replaced (`member replace`), `snapshot save`
//! through a follower (the 307 followed), the leader transferred away and removed
//! (`leader transfer`, `member remove`); at the end every acknowledged write is read
//! back.

mod support;

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const TOKEN: &str = "ctl-admin-token";

struct Servers {
    children: Vec<Child>,
    clients: Vec<String>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(dir: &Path) -> Servers {
    std::fs::write(dir.join("admin.token"), TOKEN).unwrap();
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (p, _))| format!("n{}=127.0.0.1:{p}", i + 1))
        .collect();
    let initial = format!(
        "initial_cluster = \"{}\"\nadmin_token_file = \"{}\"",
        initial.join(","),
        dir.join("admin.token").display()
    );
    let children = ports
        .iter()
        .enumerate()
        .map(|(i, (peer, client))| server(dir, &format!("n{}", i + 1), *peer, *client, &initial))
        .collect();
    Servers {
        children,
        clients: ports.iter().map(|(_, c)| format!("127.0.0.1:{c}")).collect(),
    }
}

/// Retries `f` until it returns Some (the cluster electing, addresses registering).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn leader_of(endpoints: &str) -> String {
    eventually("a leader in member list", || {
        let r = ctl(&[
            "--endpoints",
            endpoints,
            "-o",
            "json",
            "--admin-token",
            TOKEN,
            "member",
            "list",
        ]);
        let v: Value = serde_json::from_str(&r.stdout).ok()?;
        v["leader"].as_str().map(str::to_string)
    })
}

#[test]
fn t60_easyraftctl_drives_a_cluster_of_easyraft_servers() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers = start(dir.path());
    let all = servers.clients.join(",");
    let leader = leader_of(&all);
    // Once every member's client address is in the log (compact asks each member).
    let (members, leader_client) = eventually("the members' client addresses", || {
        let members = ctl_json(&all, 0, &["--admin-token", TOKEN, "member", "list"]);
        let list = members["members"].as_array()?.clone();
        let client = list.iter().find(|m| m["id"] == leader.as_str())?["client"]
            .as_str()?
            .to_string();
        list.iter()
            .all(|m| m["client"].is_string())
            .then_some((members, client))
    });
    assert_eq!(members["members"].as_array().map(Vec::len), Some(3), "{members}");
    let follower = servers.clients.iter().find(|c| **c != leader_client).unwrap().clone();

    // A writer through easyraftctl for the whole test: `w0`, `w1`, ... to whichever
    // endpoints are listed now, remembering what was acknowledged (exit 0).
    let endpoints = Arc::new(Mutex::new(all.clone()));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (endpoints, acked, stop) = (endpoints.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (key, eps) = (format!("w{i}"), endpoints.lock().unwrap().clone());
                // Every other write over the binary stream.
                let protocol = if i % 2 == 0 { "http" } else { "stream" };
                if ctl(&["--endpoints", &eps, "--protocol", protocol, "kv", "put", &key, "x"]).code == 0 {
                    acked.lock().unwrap().push(key);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // kv through a follower: the leader hint is followed.
    ctl(&["--endpoints", &follower, "kv", "put", "color", "blue"]).expect(0);
    let got = ctl_json(&follower, 0, &["kv", "get", "color"]);
    assert!(got.to_string().contains("blue"), "{got}");

    // The same over the binary stream, and an admin command over it.
    ctl(&[
        "--endpoints",
        &follower,
        "--protocol",
        "stream",
        "kv",
        "put",
        "shape",
        "round",
    ])
    .expect(0);
    let got = ctl_json(&follower, 0, &["--protocol", "stream", "kv", "get", "shape"]);
    assert_eq!(got["value"], "round", "{got}");
    let listed = ctl_json(
        &all,
        0,
        &["--protocol", "stream", "--admin-token", TOKEN, "member", "list"],
    );
    assert_eq!(listed["leader"], leader.as_str(), "{listed}");

    // One table for all nodes.
    let status = ctl_json(&all, 0, &["--admin-token", TOKEN, "cluster", "status"]);
    assert!(status.to_string().contains(&leader), "{status}");

    // A wrong admin token: refused, nothing changed.
    let bad = ctl(&["--endpoints", &all, "--admin-token", "wrong", "leader", "transfer"]);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert_eq!(leader_of(&all), leader);

    // Every member compacts its own log: one row each, entries gone from each log,
    // and the cluster still reads and writes.
    for i in 0..20 {
        ctl(&["--endpoints", &all, "kv", "put", &format!("filler{i}"), "x"]).expect(0);
    }
    let compacted = ctl_json(&follower, 0, &["--admin-token", TOKEN, "snapshot", "compact"]);
    let rows = compacted["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "{compacted}");
    for r in &rows {
        assert!(r["error"].is_null(), "{compacted}");
        assert!(r["removed"].as_u64() > Some(0), "nothing left the log of {r}");
        assert!(r["first_index"].as_u64() > r["first_index_before"].as_u64(), "{r}");
    }
    ctl(&["--endpoints", &all, "kv", "put", "after", "compact"]).expect(0);
    assert!(ctl_json(&follower, 0, &["kv", "get", "filler3"])
        .to_string()
        .contains('x'));
    // Without the admin token: refused, not "not met".
    ctl(&["--endpoints", &all, "snapshot", "compact"]).expect(1);

    // A dead member replaced: n4 joins as a learner, `member replace` promotes it once
    // it caught up and removes the dead one; writes go on and nothing is lost.
    let dead = servers
        .clients
        .iter()
        .position(|c| *c != leader_client && *c != follower)
        .unwrap();
    let dead_id = format!("n{}", dead + 1);
    let _ = servers.children[dead].kill();
    let _ = servers.children[dead].wait();
    let (peer4, client4) = (free_port(), free_port());
    let join = format!(
        "join = \"{leader_client}\"\nlearner = true\nadmin_token_file = \"{}\"",
        dir.path().join("admin.token").display()
    );
    servers.children.push(server(dir.path(), "n4", peer4, client4, &join));
    let n4 = format!("127.0.0.1:{client4}");
    eventually("n4 a learner", || {
        let m = ctl_json(&all, 0, &["--admin-token", TOKEN, "member", "list"]);
        let list = m["members"].as_array()?.clone();
        list.iter()
            .any(|x| x["id"] == "n4" && x["role"] == "learner")
            .then_some(())
    });
    ctl(&["--endpoints", &all, "kv", "put", "during", "replace"]).expect(0);
    ctl(&[
        "--endpoints",
        &all,
        "--admin-token",
        TOKEN,
        "member",
        "replace",
        &dead_id,
        "--id",
        "n4",
        "--peer",
        &format!("127.0.0.1:{peer4}"),
        "--client",
        &n4,
    ])
    .expect(0);
    let m = ctl_json(&all, 0, &["--admin-token", TOKEN, "member", "list"]);
    let mut roles: Vec<(String, String)> = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    roles.sort();
    let mut want: Vec<(String, String)> = ["n1", "n2", "n3", "n4"]
        .iter()
        .filter(|id| **id != dead_id)
        .map(|id| (id.to_string(), "voter".to_string()))
        .collect();
    want.sort();
    assert_eq!(roles, want, "{m}");
    for key in ["color", "filler3", "during"] {
        let got = ctl_json(&n4, 0, &["kv", "get", key]);
        assert!(!got["value"].is_null(), "{key} missing on n4: {got}");
    }
    let all = format!("{all},{n4}");
    *endpoints.lock().unwrap() = all.clone();

    // A backup through a follower.
    let file = dir.path().join("backup.erb");
    eventually("snapshot save through a follower", || {
        let r = ctl(&[
            "--endpoints",
            &follower,
            "--admin-token",
            TOKEN,
            "snapshot",
            "save",
            file.to_str()?,
        ]);
        (r.code == 0).then_some(())
    });
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..8], b"ERAFTBK1");

    // Leadership moves away.
    ctl(&["--endpoints", &all, "--admin-token", TOKEN, "leader", "transfer"]).expect(0);
    eventually("a new leader", || {
        let now = leader_of(&all);
        (now != leader).then_some(())
    });
    let got = ctl_json(&all, 0, &["kv", "get", "color"]);
    assert!(got.to_string().contains("blue"), "{got}");
    // ... and the old leader is removed.
    ctl(&["--endpoints", &all, "--admin-token", TOKEN, "member", "remove", &leader]).expect(0);
    let m = ctl_json(&all, 0, &["--admin-token", TOKEN, "member", "list"]);
    let ids: Vec<&str> = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["id"].as_str())
        .collect();
    assert!(!ids.contains(&leader.as_str()) && ids.len() == 2, "{m}");

    // Writes went on through all of it; every acknowledged one is there.
    let before = acked.lock().unwrap().len();
    eventually("more acknowledged writes after the last change", || {
        (acked.lock().unwrap().len() > before + 3).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let keys = acked.lock().unwrap().clone();
    assert!(keys.len() > 10, "only {} writes acknowledged", keys.len());
    let scan = ctl_json(&all, 0, &["kv", "scan", "w", "--limit", "10000"]);
    let text = scan.to_string();
    for k in &keys {
        assert!(text.contains(&format!("\"{k}\"")), "acknowledged {k} missing: {scan}");
    }
}
