//! The demo's and the chaos test's "network": one loopback TCP relay per directed
//! link between two nodes, so a partition can be cut and healed while every node
//! keeps running.
//!
//! Node `a` finds node `b` (through its own static discovery) at the relay of the link
//! `a -> b`, which forwards bytes to `b`'s real port. The relays can break the network
//! in three ways, each undone by [`Relays::heal`]:
//!
//! - a **cut** ([`Relays::cut`]): every relayed connection that crosses it is closed and
//!   new ones are refused (accepted, then closed at once), exactly what a node sees
//!   when the network between it and its peers fails;
//! - a **one-way cut** ([`Relays::block`]): the link `a -> b` alone is down, the link
//!   `b -> a` is untouched. What a stateful firewall rule dropping `a`'s new connections
//!   to `b` does: `a`'s requests never reach `b`, while `b`'s connections to `a`
//!   (requests and their answers) pass;
//! - **loss** ([`Relays::lossy`]): what losing a fraction `p` of the packets does to TCP
//!   connections. TCP retransmits, so nothing is silently dropped from a stream (a
//!   relay that dropped bytes would only corrupt frames); instead every chunk the relay
//!   forwards on a lossy link is held back with probability `p` for 50-400 ms (a
//!   retransmission timeout), a connection is reset with probability `p / 8` per chunk
//!   (a connection that kept losing packets and gave up), and a new connection is
//!   refused with probability `p / 2` (lost SYNs).
//!
//! Nothing else changes: the nodes, their servers and their API ports (which clients
//! reach directly) are untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use easyraft::discovery::{NodeAddress, StaticServiceDiscovery};
use easyraft::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::rng::Rng;

/// What is broken in the network now.
#[derive(Clone, Debug, Default)]
struct Net {
    /// Cut off from the others (they still talk among themselves).
    cut: BTreeSet<NodeId>,
    /// Directed links that are down (one-way cuts).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Directed links that lose this fraction of their packets.
    lossy: BTreeMap<(NodeId, NodeId), f64>,
}

impl Net {
    /// Whether the link `from -> to` is down.
    fn down(&self, from: &NodeId, to: &NodeId) -> bool {
        crosses(&self.cut, from, to) || self.blocked.contains(&(from.clone(), to.clone()))
    }

    /// The loss rate of the link `from -> to`.
    fn loss(&self, from: &NodeId, to: &NodeId) -> f64 {
        self.lossy.get(&(from.clone(), to.clone())).copied().unwrap_or(0.0)
    }
}

/// The relays of a cluster, and the current cut.
pub struct Relays {
    net: watch::Sender<Net>,
    links: BTreeMap<(NodeId, NodeId), u16>,
    ports: BTreeMap<NodeId, u16>,
    tasks: Vec<JoinHandle<()>>,
}

/// Whether the link between `a` and `b` crosses the cut.
fn crosses(cut: &BTreeSet<NodeId>, a: &NodeId, b: &NodeId) -> bool {
    cut.contains(a) != cut.contains(b)
}

impl Relays {
    /// A relay for every ordered pair of `nodes` (id -> the node's own port on 127.0.0.1).
    pub async fn start(nodes: &BTreeMap<NodeId, u16>) -> std::io::Result<Self> {
        let (net, _) = watch::channel(Net::default());
        let mut links = BTreeMap::new();
        let mut tasks = Vec::new();
        for from in nodes.keys() {
            for (to, port) in nodes {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
                links.insert((from.clone(), to.clone()), listener.local_addr()?.port());
                let target = SocketAddr::from(([127, 0, 0, 1], *port));
                tasks.push(tokio::spawn(relay(
                    listener,
                    from.clone(),
                    to.clone(),
                    target,
                    net.subscribe(),
                )));
            }
        }
        Ok(Relays {
            net,
            links,
            ports: nodes.clone(),
            tasks,
        })
    }

    /// What node `me` is told about the cluster: its own real address, and each peer
    /// at the relay of the link `me -> peer`.
    pub fn discovery_for(&self, me: &NodeId) -> StaticServiceDiscovery {
        StaticServiceDiscovery::new(self.addresses_for(me))
    }

    /// The addresses [`Relays::discovery_for`] gives `me`: its own real one, and each
    /// peer's relay of the link `me -> peer`.
    pub fn addresses_for(&self, me: &NodeId) -> BTreeMap<NodeId, NodeAddress> {
        self.ports
            .iter()
            .map(|(id, port)| {
                let port = if id == me {
                    *port
                } else {
                    self.links.get(&(me.clone(), id.clone())).copied().unwrap_or(*port)
                };
                (id.clone(), NodeAddress::new("127.0.0.1", port))
            })
            .collect()
    }

    /// Cuts `nodes` off from the rest (they still talk among themselves).
    pub fn cut(&self, nodes: impl IntoIterator<Item = NodeId>) {
        let cut = nodes.into_iter().collect();
        self.net.send_modify(|n| n.cut = cut);
    }

    /// Takes the directed links `(from, to)` down; the opposite directions stay up.
    pub fn block(&self, links: impl IntoIterator<Item = (NodeId, NodeId)>) {
        let links: Vec<_> = links.into_iter().collect();
        self.net.send_modify(|n| n.blocked.extend(links));
    }

    /// Makes the directed links `(from, to)` lose the fraction `rate` (0..1) of their
    /// packets (see the module's documentation for what that does to TCP).
    pub fn lossy(&self, links: impl IntoIterator<Item = (NodeId, NodeId)>, rate: f64) {
        let links: Vec<_> = links.into_iter().collect();
        self.net
            .send_modify(|n| n.lossy.extend(links.into_iter().map(|l| (l, rate.clamp(0.0, 1.0)))));
    }

    /// Heals every cut, one-way cut and loss.
    pub fn heal(&self) {
        self.net.send_replace(Net::default());
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A relay's connections: its own little RNG each (loss needs coin flips, which need
/// not be repeatable: the timing of a real network is not).
fn conn_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x5eed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed)
}

/// Copies `src` to `dst` chunk by chunk, losing packets as the link `link` says.
async fn pump(
    mut src: tokio::net::tcp::OwnedReadHalf,
    mut dst: tokio::net::tcp::OwnedWriteHalf,
    link: (NodeId, NodeId),
    net: watch::Receiver<Net>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut rng = Rng::new(conn_seed());
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return dst.shutdown().await;
        }
        let loss = net.borrow().loss(&link.0, &link.1);
        if loss > 0.0 {
            if rng.chance(loss / 8.0) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "lossy link: connection given up",
                ));
            }
            if rng.chance(loss) {
                tokio::time::sleep(std::time::Duration::from_millis(rng.range(50, 400))).await;
            }
        }
        dst.write_all(&buf[..n]).await?;
    }
}

async fn relay(listener: TcpListener, from: NodeId, to: NodeId, target: SocketAddr, net: watch::Receiver<Net>) {
    let mut conns = JoinSet::new();
    let mut rng = Rng::new(conn_seed());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                let refuse = {
                    let n = net.borrow();
                    n.down(&from, &to) || rng.chance(n.loss(&from, &to) / 2.0)
                };
                if refuse {
                    drop(inbound);
                    continue;
                }
                let mut net = net.clone();
                let (from, to) = (from.clone(), to.clone());
                conns.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    let link = (from.clone(), to.clone());
                    let forward = pump(in_read, out_write, link.clone(), net.clone());
                    let backward = pump(out_read, in_write, link, net.clone());
                    let severed = async {
                        loop {
                            if net.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                            if net.borrow_and_update().down(&from, &to) {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = async { tokio::try_join!(forward, backward) } => {}
                        () = severed => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server; its port.
    async fn echo() -> u16 {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    /// Whether one round trip through the relay `me -> to` works (within 2 s).
    async fn round_trip(relays: &Relays, me: &str, to: &str) -> bool {
        let port = relays.addresses_for(&NodeId::new(me))[&NodeId::new(to)].port;
        let attempt = async {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            s.write_all(b"ping").await.ok()?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.ok()?;
            (&buf == b"ping").then_some(())
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
            .is_some()
    }

    #[tokio::test]
    async fn a_one_way_cut_blocks_one_direction_only() {
        let nodes = BTreeMap::from([(NodeId::new("a"), echo().await), (NodeId::new("b"), echo().await)]);
        let relays = Relays::start(&nodes).await.expect("relays");
        assert!(round_trip(&relays, "a", "b").await && round_trip(&relays, "b", "a").await);
        relays.block([(NodeId::new("a"), NodeId::new("b"))]);
        assert!(!round_trip(&relays, "a", "b").await, "a -> b is blocked");
        assert!(round_trip(&relays, "b", "a").await, "b -> a passes");
        relays.heal();
        assert!(round_trip(&relays, "a", "b").await);
    }

    #[tokio::test]
    async fn a_lossy_link_stalls_and_resets_its_connections() {
        let nodes = BTreeMap::from([(NodeId::new("a"), echo().await), (NodeId::new("b"), echo().await)]);
        let relays = Relays::start(&nodes).await.expect("relays");
        relays.lossy([(NodeId::new("a"), NodeId::new("b"))], 1.0);
        // Every chunk is held back (50-400 ms) and one in eight resets the connection;
        // a connection is refused half the time: within 30 s, one must have been lost.
        let port = relays.addresses_for(&NodeId::new("a"))[&NodeId::new("b")].port;
        let lost = tokio::time::timeout(Duration::from_secs(30), async {
            let mut stalled = false;
            loop {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                loop {
                    let t = std::time::Instant::now();
                    let mut buf = [0u8; 4];
                    if s.write_all(b"ping").await.is_err() || s.read_exact(&mut buf).await.is_err() {
                        break;
                    }
                    stalled |= t.elapsed() >= Duration::from_millis(50);
                }
                // Refused, or reset: done once a connection also stalled.
                if stalled {
                    return true;
                }
            }
        })
        .await;
        assert_eq!(lost, Ok(true), "a connection stalled, then was lost");
        assert!(
            round_trip(&relays, "b", "a").await,
            "the other direction's relay is not lossy"
        );
        relays.heal();
        assert!(round_trip(&relays, "a", "b").await);
    }
}
