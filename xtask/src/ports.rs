//! The nodes' ports on 127.0.0.1, for the demos, the chaos test and the benches'
//! clusters: free ones the OS picks, a run of them from a base port, or (for the chaos
//! test) free ones outside the kernel's ephemeral range.

use std::error::Error;
use std::net::SocketAddr;

/// `port` on 127.0.0.1.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `n` ports on 127.0.0.1: from `base` on, or free ones the OS picks.
pub(crate) fn pick_ports(n: usize, base: Option<u16>) -> Result<Vec<u16>, Box<dyn Error + Send + Sync>> {
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
/// released).
pub(crate) fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// The kernel's range of ephemeral ports (the ports outgoing connections get).
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut w = s.split_whitespace().map(|w| w.parse::<u16>().ok());
            Some((w.next()??, w.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Free loopback ports, `n` of them, for nodes that stay down for a while (the chaos
/// test: two per node slot, Raft and API).
///
/// Outside the ephemeral range: a node's port is free while it is down (killed, or a
/// spare slot not started yet, perhaps for minutes), and the clients' thousands of
/// connections a second cycle through every ephemeral port, so one of them would
/// sooner or later take it and the node could not listen again. Ports below the
/// ephemeral range are only ever taken by a program that asks for them.
pub(crate) fn free_ports_outside_ephemeral(n: usize) -> std::io::Result<Vec<u16>> {
    let (lo, hi) = ephemeral_ports();
    let (first, last) = if lo > 11_000 {
        (10_000u16, lo - 1)
    } else {
        (hi.saturating_add(1), u16::MAX)
    };
    let span = u64::from(last - first) + 1;
    // Start somewhere different every run, so concurrent runs rarely meet.
    let mut at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            d.as_nanos() as u64 ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9)
        })
        % span;
    let mut listeners = Vec::new();
    for _ in 0..span {
        if listeners.len() == n {
            break;
        }
        let port = first + at as u16;
        at = (at + 1) % span;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(l);
        }
    }
    if listeners.len() < n {
        // No room outside the ephemeral range: any free port.
        return free_ports(n);
    }
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}
