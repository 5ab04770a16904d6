//! `easyraftctl snapshot save` against a canned HTTP/1.1 responder on a real socket,
//! standing in for `GET /admin/snapshot` of easyraft-server until that lands: a
//! follower's 307 to the leader is followed, the token is sent, the file appears
//! whole (written to FILE.part, fsynced, renamed), and a refusal leaves no file.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use support::{ctl, ctl_json};

/// Serves `answers` one connection each, in order, sending each request head back on `seen`.
fn responder(answers: Vec<Vec<u8>>) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut head = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let _ = s.write_all(&answer);
            let _ = s.flush();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
    });
    (addr, rx)
}

#[test]
fn t10_snapshot_save_follows_the_redirect_and_writes_the_whole_file() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut ok = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Easyraft-Snapshot-Index: 42\r\nX-Easyraft-Snapshot-Term: 3\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .into_bytes();
    ok.extend_from_slice(&data);
    let (leader, leader_seen) = responder(vec![ok]);
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{leader}/admin/snapshot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (follower, follower_seen) = responder(vec![redirect.into_bytes()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.snap");
    let file_s = file.to_string_lossy().into_owned();
    let r = ctl_json(&follower, 0, &["--admin-token", "s3cret", "snapshot", "save", &file_s]);
    assert_eq!((r["index"].as_u64(), r["term"].as_u64()), (Some(42), Some(3)), "{r}");
    assert_eq!(r["from"], leader.as_str());
    assert_eq!(std::fs::read(&file).expect("the file"), data);
    assert!(!dir.path().join("backup.snap.part").exists());
    for seen in [follower_seen, leader_seen] {
        let head = seen.recv().expect("a request");
        assert!(head.starts_with("GET /admin/snapshot HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("authorization: bearer s3cret"),
            "{head}"
        );
    }
}

#[test]
fn t20_a_refused_snapshot_is_exit_1_and_leaves_no_file() {
    let body = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32030,"message":"unauthorized"}}"#;
    let answer = format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (addr, _seen) = responder(vec![answer.into_bytes()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.snap");
    let out = ctl(&["--endpoints", &addr, "snapshot", "save", &file.to_string_lossy()]).expect(1);
    assert!(
        out.stderr.contains("unauthorized") && out.stderr.contains(&addr),
        "{}",
        out.stderr
    );
    assert!(!file.exists());
    assert!(!dir.path().join("backup.snap.part").exists());
}
