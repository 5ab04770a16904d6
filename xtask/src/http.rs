//! A tiny HTTP/1.1 GET over a tokio `TcpStream`: enough to read a node's `/status`
//! and `/health` the way a load balancer or an operator's `curl` would.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node's `GET /status` body.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node id.
    pub id: String,
    /// `leader`, `follower`, `pre-candidate` or `candidate`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader the node knows of.
    pub leader: Option<String>,
    /// The commit index.
    pub commit: u64,
    /// The last applied index.
    pub applied: u64,
    /// Whether the node runs.
    pub running: bool,
}

/// `GET path` on `addr`: the status code and the body. Gives up after a second.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 1 s"))??;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    Ok((code, body.to_string()))
}

/// `GET /status` on `addr`, parsed; with the raw body for display.
pub async fn status(addr: SocketAddr) -> std::io::Result<(NodeStatus, String)> {
    let (code, body) = get(addr, "/status").await?;
    let parsed: NodeStatus = serde_json::from_str(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("HTTP {code}: {e}")))?;
    Ok((parsed, body))
}
