//! Backup, restore and unsafe recovery with real processes and real files:
//! - `GET /admin/snapshot` needs the admin token, a follower sends it to the leader
//!   (307), and the leader streams a backup holding every acknowledged write;
//! - `easyraft-server restore --from-snapshot FILE` seeds a new cluster that serves
//!   every write of the backup and takes new ones, and refuses a used data directory;
//! - after two of three data directories are deleted, `easyraft-server unsafe-recover`
//!   on the survivor lets it lead alone and serve every acknowledged write.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::json;
use support::*;

/// A GET with the admin token: the status, the headers (lowercase) and the body,
/// de-chunked.
fn download(port: u16, path: &str, token: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(40))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk size");
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16).unwrap();
            rest = &rest[line + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn put_all(port: u16, keys: std::ops::Range<u32>) {
    for i in keys {
        call_leader(
            port,
            "kv_put",
            json!({"key": format!("k{i}"), "value": format!("v{i}")}),
            None,
        )
        .unwrap_or_else(|e| panic!("put k{i}: {e}"));
    }
}

fn assert_has(port: u16, keys: std::ops::Range<u32>) {
    for i in keys {
        let got = call_leader(port, "kv_get", json!({"key": format!("k{i}")}), None)
            .unwrap_or_else(|e| panic!("get k{i}: {e}"));
        assert_eq!(got["value"], format!("v{i}"), "k{i}");
    }
}

fn run_tool(config: &Path, args: &[&str]) -> std::process::Output {
    bin().arg("--config").arg(config).args(args).output().unwrap()
}

#[test]
fn t40_a_backup_from_the_leader_restores_into_a_new_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (leader_id, leader_port) = leader(&nodes);
    put_all(leader_port, 0..40);

    let follower = nodes.iter().find(|n| n.id != leader_id).unwrap().client;
    let (status, _, _) = download(follower, "/admin/snapshot", None);
    assert_eq!(status, 401, "no token");
    // Once the follower knows the leader's client address (from the log), it sends
    // the request there.
    let headers = wait_for("a 307 from the follower", || {
        let (status, headers, _) = download(follower, "/admin/snapshot", Some(ADMIN_TOKEN));
        (status == 307).then_some(headers)
    });
    assert_eq!(
        header(&headers, "location"),
        Some(format!("http://127.0.0.1:{leader_port}/admin/snapshot").as_str())
    );
    let (status, headers, backup) = download(leader_port, "/admin/snapshot", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&backup));
    let index: u64 = header(&headers, "x-easyraft-snapshot-index").unwrap().parse().unwrap();
    assert!(index >= 40, "the backup covers the writes: index {index}");
    assert_eq!(&backup[..8], b"ERAFTBK1");
    let file = dir.path().join("backup.erb");
    std::fs::write(&file, &backup).unwrap();
    // admin_snapshot answers what it took.
    let taken = call_leader(leader_port, "admin_snapshot", json!({}), Some(ADMIN_TOKEN)).unwrap();
    assert!(taken["index"].as_u64().unwrap() >= index, "{taken}");
    for n in &mut nodes {
        n.kill();
    }

    // A new cluster of one, seeded from the backup.
    let new = dir.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    let (peer, client) = (free_port(), free_port());
    let cfg = write_config(
        &new,
        "solo",
        peer,
        client,
        &format!("initial_cluster = \"solo=127.0.0.1:{peer}\""),
    );
    let out = run_tool(&cfg, &["restore", "--from-snapshot", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("restored"));
    // A used directory is refused.
    let again = run_tool(&cfg, &["restore", "--from-snapshot", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // A damaged backup is refused too.
    let mut bad = backup.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    let bad_file = dir.path().join("bad.erb");
    std::fs::write(&bad_file, &bad).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let cfg2 = write_config(
        &other,
        "solo",
        free_port(),
        free_port(),
        "initial_cluster = \"solo=127.0.0.1:1\"",
    );
    let damaged = run_tool(&cfg2, &["restore", "--from-snapshot", bad_file.to_str().unwrap()]);
    assert!(!damaged.status.success());

    let solo = spawn(&new, "solo", peer, client, cfg, &[]);
    leader(std::slice::from_ref(&solo));
    assert_has(client, 0..40);
    put_all(client, 40..45);
    assert_has(client, 40..45);
}

#[test]
fn t41_unsafe_recover_lets_the_survivor_of_a_lost_majority_serve_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), 3);
    let (_, leader_port) = leader(&nodes);
    put_all(leader_port, 0..30);
    // Every node has applied every write before the disaster.
    for n in &nodes {
        wait_for(&format!("{} to apply the writes", n.id), || {
            let got = rpc(n.client, "kv_get", json!({"key": "k29", "stale": true}), None).ok()?;
            (got["value"] == "v29").then_some(())
        });
    }
    for n in &mut nodes {
        n.kill();
    }
    for id in ["node2", "node3"] {
        std::fs::remove_dir_all(dir.path().join(id)).unwrap();
    }
    let survivor = &nodes[0];
    let out = run_tool(&survivor.config, &["unsafe-recover"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("only voter"));

    let node = spawn(
        dir.path(),
        "node1",
        survivor.peer,
        survivor.client,
        survivor.config.clone(),
        &[],
    );
    leader(std::slice::from_ref(&node));
    assert_has(node.client, 0..30);
    put_all(node.client, 30..35);
    let m = members(node.client);
    assert_eq!(m["members"].as_array().unwrap().len(), 1, "{m}");
}
