//! The demo's "network": one loopback TCP relay per directed link between two nodes,
//! so a partition can be cut and healed while every node keeps running.
//!
//! Node `a` finds node `b` (through its own static discovery) at the relay of the link
//! `a -> b`, which forwards bytes to `b`'s real port. Cutting a set of nodes off closes
//! every relayed connection that crosses the cut and refuses new ones (accepted, then
//! closed at once), exactly what a node sees when the network between it and its peers
//! fails. Nothing else changes: the nodes, their WebSocket servers and their `/status`
//! endpoints on their own ports are untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use easyraft::discovery::{NodeAddress, StaticServiceDiscovery};
use easyraft::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The relays of a cluster, and the current cut.
pub struct Relays {
    cut: watch::Sender<BTreeSet<NodeId>>,
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
        let (cut, _) = watch::channel(BTreeSet::new());
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
                    cut.subscribe(),
                )));
            }
        }
        Ok(Relays {
            cut,
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
        self.cut.send_replace(nodes.into_iter().collect());
    }

    /// Heals every cut.
    pub fn heal(&self) {
        self.cut.send_replace(BTreeSet::new());
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn relay(
    listener: TcpListener,
    from: NodeId,
    to: NodeId,
    target: SocketAddr,
    cut: watch::Receiver<BTreeSet<NodeId>>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                if crosses(&cut.borrow(), &from, &to) {
                    drop(inbound);
                    continue;
                }
                let mut cut = cut.clone();
                let (from, to) = (from.clone(), to.clone());
                conns.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut inbound, mut outbound) = (inbound, outbound);
                    let severed = async {
                        loop {
                            if cut.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                            if crosses(&cut.borrow_and_update(), &from, &to) {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = severed => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
