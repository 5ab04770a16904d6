//! `Cluster`: starts, restarts and stops a set of nodes in one process, generic over
//! the storage and the transport (tests, demos, and embedded clusters).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use raft_core::{Membership, NodeId, Role, Term};
use raft_storage::LogStore;
use tracing::info;

use crate::config::RaftConfig;
use crate::error::{Error, Result};
use crate::handle::RaftHandle;
use crate::node::RaftNode;
use crate::state_machine::StateMachine;
use crate::transport::Transport;

type Factory<X> = Box<dyn Fn(&NodeId) -> X + Send + Sync>;

/// A set of nodes started together, each from the three factories (called again on
/// `restart`, so a storage factory that opens a data directory recovers the node).
pub struct Cluster<SM: StateMachine, S, T> {
    config: RaftConfig,
    founders: Membership,
    nodes: BTreeMap<NodeId, RaftHandle<SM>>,
    make_storage: Factory<Result<S>>,
    make_state_machine: Factory<SM>,
    make_transport: Factory<T>,
}

impl<SM, S, T> Cluster<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Starts a new cluster whose founding voters are `ids`.
    pub async fn start<I, N>(
        ids: I,
        config: RaftConfig,
        make_storage: impl Fn(&NodeId) -> Result<S> + Send + Sync + 'static,
        make_state_machine: impl Fn(&NodeId) -> SM + Send + Sync + 'static,
        make_transport: impl Fn(&NodeId) -> T + Send + Sync + 'static,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>,
    {
        let founders = Membership::with_voters(ids);
        let mut cluster = Cluster {
            config,
            nodes: BTreeMap::new(),
            make_storage: Box::new(make_storage),
            make_state_machine: Box::new(make_state_machine),
            make_transport: Box::new(make_transport),
            founders: founders.clone(),
        };
        for id in founders.voters {
            cluster.launch(&id, true).await?;
        }
        Ok(cluster)
    }

    async fn launch(&mut self, id: &NodeId, founder: bool) -> Result<RaftHandle<SM>> {
        let storage = (self.make_storage)(id)?;
        let sm = (self.make_state_machine)(id);
        let transport = (self.make_transport)(id);
        let bootstrap = founder.then(|| self.founders.clone());
        let handle = RaftNode::start(id.clone(), self.config.clone(), storage, sm, transport, bootstrap).await?;
        self.nodes.insert(id.clone(), handle.clone());
        Ok(handle)
    }

    /// The handle of node `id`.
    pub fn node(&self, id: impl AsRef<str>) -> Option<&RaftHandle<SM>> {
        self.nodes.get(id.as_ref())
    }

    /// All running nodes' handles.
    pub fn nodes(&self) -> impl Iterator<Item = &RaftHandle<SM>> {
        self.nodes.values()
    }

    /// The node that currently believes it leads in the highest term, if any.
    pub fn leader(&self) -> Option<&RaftHandle<SM>> {
        self.nodes
            .values()
            .filter(|h| {
                let v = h.view();
                v.running && v.role == Role::Leader
            })
            .max_by_key(|h| h.view().term)
    }

    /// Waits until some node is leader and a majority of the voters in its
    /// configuration (of each half, during a joint change) are running and agree
    /// on it. Learners and nodes outside the configuration do not count.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<RaftHandle<SM>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader() {
                if let Ok(status) = l.status().await {
                    if status.role == Role::Leader && self.majority_follows(l.id(), status.term, &status.membership) {
                        return Ok(l.clone());
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(timeout));
            }
            tokio::time::sleep(self.config.heartbeat_interval).await;
        }
    }

    /// Whether a majority of each non-empty voter set of `membership` runs here
    /// and names `leader` in `term`.
    fn majority_follows(&self, leader: &NodeId, term: Term, membership: &Membership) -> bool {
        let agrees = |id: &NodeId| {
            self.nodes.get(id).is_some_and(|h| {
                let v = h.view();
                v.running && v.term == term && v.leader.as_ref() == Some(leader)
            })
        };
        let majority =
            |set: &BTreeSet<NodeId>| set.is_empty() || set.iter().filter(|id| agrees(id)).count() * 2 > set.len();
        !membership.voters.is_empty() && majority(&membership.voters) && majority(&membership.voters_outgoing)
    }

    /// Starts a brand-new node that is not a member yet; add it through the leader
    /// (`add_learner`, then promote it).
    pub async fn add_node(&mut self, id: impl Into<NodeId>) -> Result<RaftHandle<SM>> {
        let id = id.into();
        info!(%id, "starting a new node");
        self.launch(&id, false).await
    }

    /// Stops node `id` gracefully.
    pub async fn stop_node(&mut self, id: impl AsRef<str>) {
        if let Some(h) = self.nodes.remove(id.as_ref()) {
            h.shutdown().await;
        }
    }

    /// Kills node `id` abruptly, like a crash.
    pub async fn kill(&mut self, id: impl AsRef<str>) {
        if let Some(h) = self.nodes.remove(id.as_ref()) {
            h.kill().await;
        }
    }

    /// Restarts a stopped or killed node from its storage (the storage factory is
    /// called again: open the same data directory to recover it).
    pub async fn restart(&mut self, id: impl Into<NodeId>) -> Result<RaftHandle<SM>> {
        let id = id.into();
        if let Some(h) = self.nodes.remove(&id) {
            h.shutdown().await;
        }
        let founder = self.founders.voters.contains(&id);
        self.launch(&id, founder).await
    }

    /// Stops every node gracefully.
    pub async fn stop(&mut self) {
        for (_, h) in std::mem::take(&mut self.nodes) {
            h.shutdown().await;
        }
    }
}
