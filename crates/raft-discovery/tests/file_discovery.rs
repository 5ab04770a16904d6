//! Config-file discovery on a real file: the JSON map, reloads, bad files
//! with their line numbers, and atomic writes under concurrent readers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use raft_core::NodeId;
use raft_discovery::{discovery_from_url, DiscoveryError, FileServiceDiscovery, NodeAddress, ServiceDiscovery};

fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

const SEED: &str = r#"{
  "node1": { "host": "192.168.1.100", "port": 8081 },
  "node2": { "host": "192.168.1.101", "port": 8082 },
  "node3": { "host": "192.168.1.102", "port": 8083 }
}
"#;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn reads_the_seeds_json_shape_also_through_a_file_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    write(&path, SEED);
    let d = FileServiceDiscovery::open(&path).unwrap();
    assert_eq!(
        d.get_node_address(&id("node2")).await.unwrap(),
        NodeAddress::new("192.168.1.101", 8082)
    );
    assert_eq!(d.get_all_node_addresses().await.unwrap().len(), 3);
    assert!(matches!(
        d.get_node_address(&id("node9")).await,
        Err(DiscoveryError::UnknownNode(_))
    ));
    let by_url = discovery_from_url(&format!("file://{}", path.display())).unwrap();
    assert_eq!(
        by_url.get_all_node_addresses().await.unwrap(),
        d.get_all_node_addresses().await.unwrap()
    );
    let missing = FileServiceDiscovery::open(dir.path().join("nope.json"));
    assert!(matches!(missing, Err(DiscoveryError::Io { ref path, .. }) if path.ends_with("nope.json")));
}

#[tokio::test(flavor = "current_thread")]
async fn a_changed_file_is_reloaded_on_access_and_on_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    write(&path, SEED);
    let d = FileServiceDiscovery::open(&path).unwrap();
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().port, 8081);
    // Rewritten in place (same inode), by an editor or a deployment tool.
    write(&path, &SEED.replace("8081", "9091").replace("\"node3\"", "\"node4\""));
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().port, 9091);
    assert!(d.get_node_address(&id("node4")).await.is_ok());
    assert!(d.get_node_address(&id("node3")).await.is_err());
    // Replaced by a rename (a new inode), then an explicit refresh.
    let tmp = dir.path().join("new.json");
    write(&tmp, r#"{"solo": {"host": "10.0.0.1", "port": 1}}"#);
    std::fs::rename(&tmp, &path).unwrap();
    d.refresh().await.unwrap();
    assert_eq!(
        d.get_all_node_addresses().await.unwrap().keys().collect::<Vec<_>>(),
        vec![&id("solo")]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_file_that_does_not_parse_is_an_error_with_file_and_line_and_the_last_good_map_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    write(&path, SEED);
    let d = FileServiceDiscovery::open(&path).unwrap();
    let cases: [(&str, usize); 4] = [
        // A missing comma on line 3.
        (
            "{\n  \"node1\": { \"host\": \"h\", \"port\": 1 }\n  \"node2\": { \"host\": \"h\", \"port\": 2 }\n}\n",
            3,
        ),
        // A port out of range on line 2.
        ("{\n  \"node1\": { \"host\": \"h\", \"port\": 70000 }\n}\n", 2),
        // Not a map: a list.
        ("\n\n[1, 2]\n", 3),
        // Cut short while being written.
        ("{\n  \"node1\": { \"host\": \"h\",", 2),
    ];
    for (text, line) in cases {
        write(&path, text);
        match d.refresh().await {
            Err(e @ DiscoveryError::InvalidFile { .. }) => {
                let DiscoveryError::InvalidFile { path: p, line: l, .. } = &e else {
                    unreachable!()
                };
                assert_eq!((p.as_path(), *l), (path.as_path(), line), "{e}");
                let shown = e.to_string();
                assert!(shown.starts_with(&format!("{}:{line}:", path.display())), "{shown}");
            }
            other => panic!("expected InvalidFile for {text:?}, got {other:?}"),
        }
        // Readers still get the last good map.
        assert_eq!(d.get_node_address(&id("node1")).await.unwrap().port, 8081);
        assert_eq!(d.get_all_node_addresses().await.unwrap().len(), 3);
    }
    // A node named twice: serde_json would keep the second silently; we refuse.
    write(&path, "{\n  \"node1\": {\"host\": \"a\", \"port\": 1},\n  \"node2\": {\"host\": \"b\", \"port\": 2},\n  \"node1\": {\"host\": \"c\", \"port\": 3}\n}\n");
    match d.refresh().await {
        Err(e @ DiscoveryError::DuplicateNode { .. }) => {
            let shown = e.to_string();
            assert!(shown.contains("cluster.json:4:") && shown.contains("node1"), "{shown}");
        }
        other => panic!("expected DuplicateNode, got {other:?}"),
    }
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().port, 8081);
    // Registering over a broken file would destroy someone's edit: refused.
    assert!(d.register_node(&id("node5"), NodeAddress::new("h", 5)).await.is_err());
    // Fixed: picked up on the next access.
    write(&path, r#"{"node1": {"host": "fixed", "port": 1}}"#);
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "fixed");
    // A file that is bad from the start cannot be opened.
    write(&path, "{");
    assert!(matches!(
        FileServiceDiscovery::open(&path),
        Err(DiscoveryError::InvalidFile { line: 1, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_unregister_write_atomically_while_others_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    let writer = Arc::new(FileServiceDiscovery::create(&path).unwrap());
    assert!(writer.get_all_node_addresses().await.unwrap().is_empty());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers: another discovery on the same file refreshing, and a raw reader
    // parsing the bytes, as fast as they can. Neither may ever see a partial file.
    let reader = {
        let d = FileServiceDiscovery::open(&path).unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                d.refresh().await.expect("a reader saw a broken file");
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let raw = {
        let path = path.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).expect("the file vanished during a rename");
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("partial file seen ({e}): {text:?}"));
                n += 1;
            }
            n
        })
    };
    // Writers: concurrent registrations through one instance are serialized, none lost.
    let mut tasks = Vec::new();
    for w in 0..4u16 {
        let d = writer.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15u16 {
                let node = id(&format!("w{w}-n{i}"));
                d.register_node(&node, NodeAddress::new("10.0.0.1", 1000 + w * 100 + i))
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    d.unregister_node(&node).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refreshes = reader.await.unwrap();
    let reads = raw.join().unwrap();
    assert!(refreshes > 0 && reads > 0);
    let on_disk = FileServiceDiscovery::open(&path)
        .unwrap()
        .get_all_node_addresses()
        .await
        .unwrap();
    assert_eq!(on_disk.len(), 4 * 10, "registrations lost: {on_disk:?}");
    assert_eq!(on_disk[&id("w3-n14")], NodeAddress::new("10.0.0.1", 1314));
    assert!(matches!(
        writer.unregister_node(&id("w0-n0")).await,
        Err(DiscoveryError::UnknownNode(_))
    ));
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("cluster.json")]);
}
