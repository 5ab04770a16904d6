//! The nodes' ports on 127.0.0.1.

use std::net::SocketAddr;

use super::DemoError;

/// `port` on 127.0.0.1.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `n` ports on 127.0.0.1: from `base` on, or free ones the OS picks.
pub(super) fn pick_ports(n: usize, base: Option<u16>) -> Result<Vec<u16>, DemoError> {
    let ports: Vec<u16> = match base {
        Some(b) => (0..n as u16)
            .map(|i| b.checked_add(i).ok_or("--base-port is too high"))
            .collect::<Result<_, _>>()?,
        None => free_ports(n)?,
    };
    if base.is_some() {
        for p in &ports {
            std::net::TcpListener::bind(("127.0.0.1", *p)).map_err(|e| format!("port {p} is not free: {e}"))?;
        }
    }
    Ok(ports)
}

/// `n` distinct free loopback ports, picked by the OS (bound all at once, then
/// released). The benches' clusters use them too.
pub(crate) fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}
