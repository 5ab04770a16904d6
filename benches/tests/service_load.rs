//! `service_load`'s pieces against real sockets: the keep-alive HTTP/1.1 client
//! against a scripted server, and the load generator against one real
//! `easyraft-server` process (a debug build, built here if needed).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use benches::http1::Http1;
use benches::load::service::{self, Op, System};
use benches::load::{self};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads one request (head and `Content-Length` body) from `s`.
async fn read_request(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn one_connection_carries_requests_answered_with_a_length_and_chunked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let first = read_request(&mut s).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
        let second = read_request(&mut s).await;
        s.write_all(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .await
            .unwrap();
        // A second connection would be accepted here: there must be none.
        (
            first,
            second,
            tokio::time::timeout(Duration::from_millis(300), listener.accept())
                .await
                .is_err(),
        )
    });
    let mut http = Http1::new(addr, "X-Test: 1\r\n", Duration::from_secs(10));
    assert_eq!(http.post("/a", b"{}").await.unwrap(), (200, b"hello".to_vec()));
    assert_eq!(http.get("/b").await.unwrap(), (503, b"abcde".to_vec()));
    let (first, second, one_connection) = server.await.unwrap();
    assert!(first.starts_with("POST /a HTTP/1.1\r\n") && first.contains("X-Test: 1\r\n") && first.ends_with("{}"));
    assert!(second.starts_with("GET /b HTTP/1.1\r\n"), "{second}");
    assert!(one_connection, "the client opened a second connection");
}

#[tokio::test]
async fn a_server_that_hangs_up_is_an_error_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = read_request(&mut s).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            .await
            .unwrap();
    });
    let mut http = Http1::new(addr, "", Duration::from_secs(10));
    assert!(http.post("/", b"{}").await.is_err());
}

/// The debug `easyraft-server`, built now (a no-op when it is up to date).
fn server_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "easyraft-server", "--bin", "easyraft-server"])
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p easyraft-server failed");
    // target/debug/deps/<this test> -> target/debug/easyraft-server
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("easyraft-server");
    assert!(bin.is_file(), "no {}", bin.display());
    bin
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_puts_and_gets_on_a_real_easyraft_server() {
    let bin = server_binary();
    let dir = tempfile::tempdir().unwrap();
    let (peer, client) = (free_port(), free_port());
    let config = dir.path().join("node1.toml");
    std::fs::write(
        &config,
        format!(
            "id = \"node1\"\ndata_dir = \"{}\"\nlisten_peer = \"127.0.0.1:{peer}\"\nlisten_client = \"127.0.0.1:{client}\"\ninitial_cluster = \"node1=127.0.0.1:{peer}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("node1.log")).unwrap();
    let _server = Server(
        Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let endpoint = std::net::SocketAddr::from(([127, 0, 0, 1], client));
    let leader = service::find_leader(System::Easyraft, &[endpoint], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(leader, endpoint);
    // Over HTTP, and over the binary stream with more clients than share one
    // connection (two `Client`s).
    for (system, clients) in [
        (System::Easyraft, 4),
        (System::EasyraftStream, service::STREAM_CALLERS + 2),
    ] {
        for op in [Op::Put, Op::Get] {
            let proposers = service::prepare(system, op, leader, &[endpoint], clients)
                .await
                .unwrap();
            let stats = load::drive_all(proposers, Duration::from_millis(100), Duration::from_millis(500)).await;
            assert!(
                stats.commits > 0 && stats.total_ops >= stats.commits,
                "{system:?} {op:?}: {stats:?}"
            );
            assert_eq!(stats.errors, 0, "{system:?} {op:?}: {stats:?}");
            assert!(stats.p50 <= stats.p99, "{system:?} {op:?}: {stats:?}");
        }
    }
    // Nothing listening: the operation fails (an error, not a commit), without a
    // hang or a panic.
    let nowhere = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut gone = service::ServiceClient::new(System::Easyraft, Op::Put, nowhere, 0);
    assert!(!load::Proposer::propose(&mut gone).await);
}
