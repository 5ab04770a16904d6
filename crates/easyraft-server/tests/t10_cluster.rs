//! Three servers started from config files: they elect a leader and serve kv over
//! HTTP JSON-RPC; a write to a follower is redirected to the leader's client address.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[test]
fn t10_three_servers_from_config_files_elect_a_leader_and_serve_kv() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), 3);
    let (leader_id, leader_port) = leader(&nodes);

    let put = call_leader(
        leader_port,
        "kv_put",
        json!({"key": "greeting", "value": "hello"}),
        None,
    )
    .unwrap_or_else(|e| panic!("kv_put: {e}\n{}", nodes[0].log()));
    assert_eq!(put["ok"], true);
    // A linearizable read on every node, followers included.
    for n in &nodes {
        let got = wait_for("kv_get on every node", || {
            rpc(n.client, "kv_get", json!({"key": "greeting"}), None)
                .map_err(|e| eprintln!("kv_get on {}: {e}", n.id))
                .ok()
        });
        assert_eq!(got["value"], "hello", "on {}", n.id);
    }

    // A write to a follower: -32020 with the leader's *client* address (known once the
    // leader recorded it in the replicated directory).
    let follower = nodes.iter().find(|n| n.id != leader_id).unwrap();
    let err = wait_for("a not-leader answer with the leader's client address", || {
        match rpc(follower.client, "kv_put", json!({"key": "k", "value": "v"}), None) {
            Err(e) if e["code"] == -32020 && e["data"]["address"].is_string() => Some(e),
            _ => None,
        }
    });
    // The leader may have changed in between: the hint names whichever leads now.
    let hinted = err["data"]["leader"].as_str().unwrap();
    let hinted_port = nodes.iter().find(|n| n.id == hinted).unwrap().client;
    assert_eq!(err["data"]["address"], format!("127.0.0.1:{hinted_port}"));

    // The operator endpoints.
    let (code, body) = http(leader_port, "GET", "/health", None, None).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ok\":true"), "{body}");
    let (code, body) = http(leader_port, "GET", "/metrics", None, None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("easyraft_"), "{body}");
    let (code, body) = http(follower.client, "GET", "/status", None, None).unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["membership"]["voters"].as_array().unwrap().len(), 3, "{body}");

    // The other services are served by default; admin_status reaches every member.
    let lock = call_leader(
        leader_port,
        "lock_acquire",
        json!({"name": "l", "owner": "me", "ttl_ms": 10_000}),
        None,
    )
    .unwrap();
    assert_eq!(lock["granted"], true);
    let cfg = call_leader(leader_port, "config_set", json!({"key": "app/x", "value": "1"}), None).unwrap();
    assert!(cfg["version"].as_u64().unwrap() > 0);
    let all = wait_for("admin_status reaching all three", || {
        let s = rpc(leader_port, "admin_status", json!({}), Some(ADMIN_TOKEN)).ok()?;
        let reachable = s["nodes"].as_array()?.iter().filter(|n| n["reachable"] == true).count();
        (reachable == 3).then_some(s)
    });
    assert_eq!(all["nodes"].as_array().unwrap().len(), 3);
}

#[test]
fn t15_a_server_serves_only_the_configured_services() {
    let dir = tempfile::tempdir().unwrap();
    let (peer, client) = (free_port(), free_port());
    let cfg = write_config(
        dir.path(),
        "solo",
        peer,
        client,
        &format!("initial_cluster = \"solo=127.0.0.1:{peer}\"\nservices = [\"kv\"]"),
    );
    let n = spawn(dir.path(), "solo", peer, client, cfg, &[]);
    let put = call_leader(n.client, "kv_put", json!({"key": "a", "value": "1"}), None)
        .unwrap_or_else(|e| panic!("{e}\n{}", n.log()));
    assert_eq!(put["ok"], true);
    let err = rpc(n.client, "lock_holder", json!({"name": "l"}), None).unwrap_err();
    assert_eq!(err["code"], -32601, "{err}");

    // A batch gets one answer per call; one with an admin call and no token is refused
    // whole; a body that is not JSON is a parse error.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "kv_put", "params": {"key": "b", "value": "2"}},
        {"jsonrpc": "2.0", "id": 2, "method": "kv_get", "params": {"key": "a"}},
    ]);
    let (code, body) = http(n.client, "POST", "/", Some(&batch.to_string()), None).unwrap();
    let answers: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, answers[1]["result"]["value"].clone()),
        (200, json!("1")),
        "{body}"
    );
    assert_eq!(answers[0]["result"]["ok"], true, "{body}");
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "kv_put", "params": {"key": "c", "value": "3"}},
        {"jsonrpc": "2.0", "id": 2, "method": "admin_remove", "params": {"id": "solo"}},
    ]);
    let (code, _) = http(n.client, "POST", "/", Some(&batch.to_string()), None).unwrap();
    assert_eq!(code, 401);
    let c = rpc(n.client, "kv_get", json!({"key": "c"}), None).unwrap();
    assert_eq!(c["value"], serde_json::Value::Null, "the refused batch wrote nothing");
    let (_, body) = http(n.client, "POST", "/", Some("{not json"), None).unwrap();
    assert!(body.contains("-32700"), "{body}");
}

#[test]
fn t18_three_servers_over_wss_with_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("node.crt"), dir.path().join("node.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nserver_name = \"localhost\"\n",
        cert.display(),
        key.display()
    );
    let nodes = start_cluster_with(dir.path(), 3, &tls);
    let (_, port) = leader(&nodes);
    let put = call_leader(port, "kv_put", json!({"key": "over", "value": "wss"}), None).unwrap();
    assert_eq!(put["ok"], true);
    for n in &nodes {
        let got = wait_for("the write on every node", || {
            rpc(n.client, "kv_get", json!({"key": "over"}), None).ok()
        });
        assert_eq!(got["value"], "wss");
    }
    // The peer port speaks TLS only: a plain-text request gets no HTTP answer.
    assert!(!matches!(
        http(nodes[0].peer, "GET", "/health", None, None),
        Ok((200, _))
    ));
}

#[test]
fn t16_three_servers_bootstrap_from_a_discovery_url() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<(String, u16, u16)> = (1..=3)
        .map(|i| (format!("node{i}"), free_port(), free_port()))
        .collect();
    let url = format!(
        "static:{}",
        ports
            .iter()
            .map(|(id, p, _)| format!("{id}=127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let nodes: Vec<Proc> = ports
        .iter()
        .map(|(id, p, c)| {
            // No initial_cluster: the discovery set bootstraps, and gives the advertised
            // peer address (listen on all interfaces).
            let cfg = write_config(dir.path(), id, *p, *c, &format!("discovery = \"{url}\""));
            spawn(dir.path(), id, *p, *c, cfg, &["--listen-peer", &format!("0.0.0.0:{p}")])
        })
        .collect();
    let (_, port) = leader(&nodes);
    let put = call_leader(port, "kv_put", json!({"key": "found", "value": "by-url"}), None).unwrap();
    assert_eq!(put["ok"], true);
    let m = wait_for("every member's peer address as discovery gives it", || {
        let m = members(port);
        let peers: Vec<String> = m["members"]
            .as_array()?
            .iter()
            .filter_map(|x| x["peer"].as_str().map(str::to_string))
            .collect();
        (peers.len() == 3 && peers.iter().all(|p| p.starts_with("127.0.0.1:"))).then_some(m)
    });
    assert_eq!(m["members"].as_array().unwrap().len(), 3);
}

/// `[client_tls]`: the client port serves HTTPS only. easyraft-client reaches it
/// with the CA, and the members reach each other's client ports over https too:
/// followers register their client addresses with the leader, and `admin_status`
/// reads every member's `/status`.
#[test]
fn t19_the_client_port_serves_https_to_clients_and_to_members() {
    use easyraft_client::client::{Call, Client, Settings};
    use easyraft_client::endpoint::Endpoint;
    use easyraft_client::policy::CallKind;

    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "[client_tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let nodes = start_cluster_with(dir.path(), 3, &tls);
    let endpoints: Vec<Endpoint> = nodes
        .iter()
        .map(|n| Endpoint::parse(&format!("https://127.0.0.1:{}", n.client)).unwrap())
        .collect();
    let client = Client::new(Settings {
        endpoints,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
        admin_token: Some(ADMIN_TOKEN.to_string()),
        cacert: Some(cert.clone()),
        protocol: easyraft_client::client::Protocol::Http,
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let put = Call::new(
        "kv_put",
        CallKind::IdempotentWrite,
        json!({"key": "over", "value": "https"}),
    );
    let reply = rt
        .block_on(client.call(&put))
        .unwrap_or_else(|e| panic!("kv_put over https: {e}\n{}", nodes[0].log()));
    assert_eq!(reply.result["ok"], true);
    let get = Call::new("kv_get", CallKind::Read, json!({"key": "over"}));
    assert_eq!(rt.block_on(client.call(&get)).unwrap().result["value"], "https");

    // Every follower registered its client address with the leader over https.
    let members = Call::new("admin_members", CallKind::Read, json!({})).admin();
    wait_for("every member's client address in the directory", || {
        let m = rt.block_on(client.call(&members)).ok()?.result;
        let clients = m["members"]
            .as_array()?
            .iter()
            .filter(|x| x["client"].is_string())
            .count();
        (clients == 3).then_some(())
    });
    // The node answering admin_status read every member's /status over https.
    let status = Call::new("admin_status", CallKind::Read, json!({})).admin();
    let all = wait_for("every member reachable in admin_status", || {
        let s = rt.block_on(client.call(&status)).ok()?.result;
        let rows = s["nodes"].as_array()?.clone();
        (rows.len() == 3 && rows.iter().all(|r| r["reachable"] == true)).then_some(rows)
    });
    assert!(all.iter().all(|r| r["role"].is_string()), "{all:?}");

    // Plain HTTP on the client port gets no HTTP answer.
    assert!(!matches!(
        http(nodes[0].client, "GET", "/health", None, None),
        Ok((200, _))
    ));
}

/// `discovery = "etcd://…"` with `bootstrap_expect = 3`: each server registers its peer
/// address in a real etcd, and none bootstraps before all three are there. The nodes
/// start a second apart, so a node that bootstrapped with the set it first saw would
/// found a cluster of one or two, and the three would never agree on three members.
#[test]
fn t17_three_servers_register_in_etcd_and_bootstrap_once_all_are_there() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let etcd = rt
        .block_on(raft_discovery::testing::EtcdServer::start())
        .expect("etcd (cargo xtask test installs it)");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("etcd://{}/easyraft-t17?ttl=5s", etcd.endpoint());
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let (id, p, c) = (format!("node{i}"), free_port(), free_port());
        let extra = format!("discovery = \"{url}\"\nbootstrap_expect = 3");
        let cfg = write_config(dir.path(), &id, p, c, &extra);
        nodes.push(spawn(dir.path(), &id, p, c, cfg, &[]));
        std::thread::sleep(Duration::from_secs(1));
    }
    let (_, port) = leader(&nodes);
    let put = call_leader(port, "kv_put", json!({"key": "found", "value": "in-etcd"}), None).unwrap();
    assert_eq!(put["ok"], true);
    // The last node opens its client port once it has taken the set, which under load
    // can be after the other two elected; wait for each to answer, then check its view.
    for n in &nodes {
        let m = wait_for(&format!("{} to answer admin_members", n.id), || {
            rpc(n.client, "admin_members", json!({}), Some(ADMIN_TOKEN)).ok()
        });
        let ids: Vec<&str> = m["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["id"].as_str())
            .collect();
        assert_eq!(ids, ["node1", "node2", "node3"], "members as {} sees them: {m}", n.id);
    }
    // Without bootstrap_expect, a new node refuses to guess when etcd's set is complete.
    let (p, c) = (free_port(), free_port());
    let cfg = write_config(dir.path(), "node9", p, c, &format!("discovery = \"{url}\""));
    let out = bin().arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bootstrap_expect"), "{err}");
}
