//! One connection on loopback, shared by the transport benches (`ws`, `jsonrpc`):
//! AppendEntries messages, a WebSocket server that decodes every frame as a node does
//! and echoes it, a plain TCP echo of the same bytes as the baseline, and the rounds
//! that drive them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use raft_core::{AppendRequest, Entry, EntryPayload, Message, MessageBody, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// Messages in flight in the pipelined benches.
pub const WINDOW: usize = 64;
/// Bytes per command in an AppendEntries.
pub const COMMAND_BYTES: usize = 100;
/// The transport's default frame limit.
pub const MAX_BYTES: usize = 64 << 20;

/// A two-worker tokio runtime (the machine the benches run on is small and shared).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An AppendEntries from node1 to node2 in term 7 carrying `n` commands of
/// [`COMMAND_BYTES`] bytes each.
pub fn append_entries(n: u64) -> Message {
    Message {
        group: 0,
        from: NodeId::new("node1"),
        to: NodeId::new("node2"),
        term: 7,
        body: MessageBody::AppendEntries(AppendRequest {
            prev_log_index: 1000,
            prev_log_term: 7,
            entries: (1..=n)
                .map(|i| Entry {
                    term: 7,
                    index: 1000 + i,
                    payload: EntryPayload::Command(Bytes::from(vec![(i % 251) as u8; COMMAND_BYTES])),
                })
                .collect(),
            commit: 1000,
        }),
    }
}

/// tungstenite's limits as the WebSocket transport sets them.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_BYTES))
        .max_frame_size(Some(MAX_BYTES))
}

/// A WebSocket server that decodes every frame as a node does, then echoes it.
pub async fn ws_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(ws_config())).await else {
                    return;
                };
                while let Some(Ok(frame)) = ws.next().await {
                    let ok = match &frame {
                        WsMessage::Binary(b) => raft_wire::decode_binary(b).is_ok(),
                        WsMessage::Text(t) => raft_wire::decode_envelope(t.as_str()).is_ok(),
                        WsMessage::Close(_) => return,
                        _ => continue,
                    };
                    assert!(ok, "the bench sends only valid frames");
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A connection to [`tcp_echo_server`], with Nagle off as the transports set it.
pub async fn tcp_client(addr: SocketAddr) -> TcpStream {
    let t = TcpStream::connect(addr).await.expect("connect");
    t.set_nodelay(true).expect("nodelay");
    t
}

/// A TCP server that echoes length-prefixed byte strings.
pub async fn tcp_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.into_split();
                let mut buf = Vec::new();
                loop {
                    let Ok(len) = r.read_u32().await else { return };
                    buf.resize(len as usize, 0);
                    if r.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let mut out = Vec::with_capacity(4 + buf.len());
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&buf);
                    if w.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The WebSocket transport's two encodings.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Enc {
    /// postcard batches in binary frames.
    Binary,
    /// The JSON envelope in text frames.
    Json,
}

impl Enc {
    /// `binary` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            Enc::Binary => "binary",
            Enc::Json => "json",
        }
    }

    /// Encodes `m` as the transport would.
    pub fn frame(self, m: &Message, id: u64) -> WsMessage {
        match self {
            Enc::Binary => WsMessage::Binary(
                raft_wire::encode_binary(std::slice::from_ref(m))
                    .expect("encode")
                    .into(),
            ),
            Enc::Json => WsMessage::text(raft_wire::encode_envelope(m, &format!("node1-{id}"))),
        }
    }

    /// Decodes an echoed frame as the transport would.
    pub fn check(self, frame: &WsMessage) {
        let ok = match (self, frame) {
            (Enc::Binary, WsMessage::Binary(b)) => raft_wire::decode_binary(b).is_ok(),
            (Enc::Json, WsMessage::Text(t)) => raft_wire::decode_envelope(t.as_str()).is_ok(),
            _ => false,
        };
        assert!(ok, "a valid echo");
    }
}

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Connects a WebSocket client to `addr` (`/raft/`) with the transport's limits.
pub async fn ws_client(addr: SocketAddr) -> Ws {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tokio_tungstenite::client_async_with_config(format!("ws://{addr}/raft/"), tcp, Some(ws_config()))
        .await
        .expect("handshake")
        .0
}

/// The next data frame (pings and pongs skipped).
pub async fn next_frame(
    ws: &mut (impl StreamExt<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> WsMessage {
    loop {
        match ws.next().await.expect("open").expect("frame") {
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            f => return f,
        }
    }
}

/// `rounds` rounds of `window` messages each (encode, echo, decode); returns the time.
pub async fn ws_rounds(ws: &mut Ws, enc: Enc, m: &Message, window: usize, rounds: u64) -> Duration {
    let start = Instant::now();
    let (mut sink, mut stream) = ws.split();
    for r in 0..rounds {
        let send = async {
            for i in 0..window {
                sink.feed(enc.frame(m, r * window as u64 + i as u64))
                    .await
                    .expect("send");
            }
            sink.flush().await.expect("flush");
        };
        let recv = async {
            for _ in 0..window {
                enc.check(&next_frame(&mut stream).await);
            }
        };
        tokio::join!(send, recv);
    }
    start.elapsed()
}

/// The same, as a plain TCP echo of the already-encoded bytes.
pub async fn tcp_rounds(tcp: &mut TcpStream, bytes: &[u8], window: usize, rounds: u64) -> Duration {
    // The window goes out in one write, as the WebSocket sink's feed-then-flush does.
    let mut framed = Vec::with_capacity(window * (4 + bytes.len()));
    for _ in 0..window {
        framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        framed.extend_from_slice(bytes);
    }
    let mut buf = vec![0u8; bytes.len()];
    let start = Instant::now();
    let (mut r, mut w) = tcp.split();
    for _ in 0..rounds {
        let send = async {
            w.write_all(&framed).await.expect("write");
        };
        let recv = async {
            for _ in 0..window {
                let len = r.read_u32().await.expect("len") as usize;
                assert_eq!(len, buf.len());
                r.read_exact(&mut buf).await.expect("read");
            }
        };
        tokio::join!(send, recv);
    }
    start.elapsed()
}

/// (messages, seconds) per bench, for the ratio lines.
pub type Totals = BTreeMap<String, (u64, f64)>;

/// Messages per second of bench `id`.
pub fn rate(totals: &Totals, id: &str) -> Option<f64> {
    totals.get(id).map(|(n, s)| *n as f64 / s.max(1e-9))
}
