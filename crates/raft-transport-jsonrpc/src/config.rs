//! The JSON-RPC transport's settings.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of one node's JSON-RPC transport.
#[derive(Clone, Debug)]
pub struct JsonRpcConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The cluster's id: calls that carry another cluster's id are refused.
    pub cluster_id: String,
    /// The shared secret every HTTP request or WebSocket handshake must present as
    /// `Authorization: Bearer <token>` (401 otherwise). `None` accepts anyone.
    pub token: Option<String>,
    /// The largest request or response body, in bytes.
    pub max_message_bytes: u32,
    /// The most calls in one JSON-RPC batch.
    pub max_batch: u32,
    /// The most batches sent to one peer and not acknowledged yet (at least 1).
    ///
    /// `Transport::send` returns once its batch is written to the peer's connection,
    /// while earlier batches may still await their answers; when this many are in
    /// flight it waits for the oldest slot to free. Batches stay in order on the wire
    /// and into the peer's node (see the server's sequencer). A batch that carries a
    /// snapshot chunk is the exception: its `send` returns with the answer, so a failed
    /// chunk is reported as such. 1 sends one batch per round trip.
    pub max_in_flight: u32,
    /// The most concurrent connections.
    pub max_connections: u32,
    /// A call to a peer gives up after this long.
    pub request_timeout: Duration,
    /// Connecting to a peer gives up after this long.
    pub connect_timeout: Duration,
    /// The first reconnect delay after a failure (doubled per failure, with jitter).
    pub backoff_initial: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
}

impl JsonRpcConfig {
    /// Defaults for a node listening on `listen` in cluster `cluster_id`.
    pub fn new(listen: SocketAddr, cluster_id: impl Into<String>) -> Self {
        JsonRpcConfig {
            listen,
            cluster_id: cluster_id.into(),
            token: None,
            max_message_bytes: 64 << 20,
            max_batch: 1024,
            max_in_flight: 8,
            max_connections: 1024,
            request_timeout: std::time::Duration::from_secs(5),
            connect_timeout: std::time::Duration::from_secs(2),
            backoff_initial: std::time::Duration::from_millis(50),
            backoff_max: std::time::Duration::from_secs(2),
        }
    }

    /// Sets the cluster token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}
