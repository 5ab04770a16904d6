//! The WebSocket handshake's protocol version and the `x-easyraft-*` headers a node
//! sends with it (the JSON-RPC transport sends the cluster and node headers too). See
//! docs/protocol.md, "The handshake" and "Versioning".

/// The wire protocol version, sent in the handshake (`x-easyraft-protocol`).
pub const PROTOCOL_VERSION: u32 = 1;
/// Handshake header: the protocol version.
pub const HEADER_PROTOCOL: &str = "x-easyraft-protocol";
/// Handshake header: the cluster id; a node of another cluster is refused.
pub const HEADER_CLUSTER: &str = "x-easyraft-cluster";
/// Handshake header: the connecting node's id; its messages must come from it.
pub const HEADER_NODE: &str = "x-easyraft-node";
