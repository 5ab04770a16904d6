//! The WebSocket transport's settings.

use std::net::SocketAddr;
use std::time::Duration;

/// How messages are encoded between easyraft nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Binary frames with a postcard-encoded batch (compact and fast; the default).
    #[default]
    Binary,
    /// Text frames with the JSON envelope, one message each (readable, slower).
    Json,
}

/// TLS for `wss://`: the server's and the client's rustls configurations.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub struct TlsConfig {
    /// Used to accept connections.
    pub server: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    /// Used to connect to peers.
    pub client: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    /// The name to verify peers' certificates against; by default each peer's host.
    pub server_name: Option<String>,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Settings of one node's WebSocket transport.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port; see `WsTransport::local_addr`).
    pub listen: SocketAddr,
    /// The cluster's id: peers of another cluster are refused at the handshake.
    pub cluster_id: String,
    /// A shared secret every connection must present (`Authorization: Bearer <token>`,
    /// or `?token=` for clients that cannot set headers). `None` accepts anyone: only
    /// for closed networks.
    pub token: Option<String>,
    /// The encoding this node sends with (a server accepts both).
    pub encoding: Encoding,
    /// The largest frame or message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// The largest JSON (text) frame accepted, in bytes: a JSON tree takes several
    /// times its text in memory, so text frames get a lower cap than binary ones.
    pub max_json_bytes: usize,
    /// At most this many inbound connections at once (peers, clients, probes); one
    /// more is closed at once.
    pub max_connections: usize,
    /// A connection must finish its request head (and TLS and WebSocket handshakes)
    /// within this long, or it is closed: a slow or silent client cannot hold sockets.
    pub handshake_timeout: Duration,
    /// Connecting to a peer gives up after this long.
    pub connect_timeout: Duration,
    /// Sending a batch gives up after this long (the connection is then dropped).
    pub send_timeout: Duration,
    /// A ping goes out when a connection was quiet this long; no pong for three
    /// intervals drops it.
    pub ping_interval: Duration,
    /// The first reconnect delay after a failure; doubled per failure, with jitter.
    pub backoff_initial: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
    /// `wss://` instead of `ws://`.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

impl WsConfig {
    /// Defaults for a node listening on `listen` in cluster `cluster_id`.
    pub fn new(listen: SocketAddr, cluster_id: impl Into<String>) -> Self {
        WsConfig {
            listen,
            cluster_id: cluster_id.into(),
            token: None,
            encoding: Encoding::Binary,
            max_message_bytes: 64 << 20,
            max_json_bytes: 8 << 20,
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            send_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Sets the cluster token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub(crate) fn ws_config(&self) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}
