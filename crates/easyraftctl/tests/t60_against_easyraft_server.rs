//! `easyraftctl` against three real `easyraft-server` processes started from config
//! files: kv through a follower, `member list`, `cluster status`, `leader transfer`,
//! `snapshot save` through a follower (the 307 followed), and a wrong admin token
//! that changes nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const TOKEN: &str = "ctl-admin-token";

static BUILD: Once = Once::new();

/// `easyraft-server`, next to `easyraftctl` (built if missing).
fn server_exe() -> PathBuf {
    let exe = ctl_exe()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("easyraft-server");
    if !exe.exists() {
        BUILD.call_once(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "-p", "easyraft-server", "--bin", "easyraft-server"])
                .status()
                .expect("cargo runs");
            assert!(ok.success(), "cargo build -p easyraft-server failed");
        });
    }
    exe
}

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
    let mut children = Vec::new();
    for (i, (peer, client)) in ports.iter().enumerate() {
        let id = format!("n{}", i + 1);
        let cfg = dir.join(format!("{id}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "id = \"{id}\"\ndata_dir = \"{}\"\nlisten_peer = \"127.0.0.1:{peer}\"\nlisten_client = \"127.0.0.1:{client}\"\ninitial_cluster = \"{}\"\nadmin_token_file = \"{}\"\n[raft]\nelection_timeout = \"600ms\"\nheartbeat_interval = \"60ms\"\n",
                dir.join(&id).display(),
                initial.join(","),
                dir.join("admin.token").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
        children.push(
            Command::new(server_exe())
                .arg("--config")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
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
    let servers = start(dir.path());
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

    // kv through a follower: the leader hint is followed.
    ctl(&["--endpoints", &follower, "kv", "put", "color", "blue"]).expect(0);
    let got = ctl_json(&follower, 0, &["kv", "get", "color"]);
    assert!(got.to_string().contains("blue"), "{got}");

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
}
