//! Real servers on loopback for tests and demos (feature `testing`): an
//! authoritative DNS server in-process ([`DnsTestServer`]) and an `etcd` child
//! process ([`EtcdServer`]). Both pick free ports and clean up on drop.

mod dns_server;
mod etcd_server;

pub use dns_server::DnsTestServer;
pub use etcd_server::{etcd_binary, EtcdServer, INSTALL_HINT};
