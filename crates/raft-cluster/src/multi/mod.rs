//! [`RaftHost`]: many Raft groups in one process, over one transport.
//!
//! Each group is a node of its own ([`RaftHandle`], its own core, state machine,
//! membership and storage) with a group id ([`raft_core::GroupId`]) that every message
//! it sends carries. What the groups share:
//!
//! - **the transport**: one listener and one connection per peer node. Inbound
//!   messages are routed by group id; a message for a group this host does not run is
//!   refused with [`crate::InboxError::UnknownGroup`] (the network transports answer
//!   it with their `UnknownGroup` error), never a crash. Outbound, everything the
//!   groups have queued for one peer leaves as one batch ([`mux`]);
//! - **the log writer thread**, which merges the writes of every group queued when
//!   it wakes into one round;
//! - **a fixed pool of apply threads** instead of a thread per group.
//!
//! A group can be a member on any subset of the hosts: its membership is its own.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use raft_core::{GroupId, Membership, NodeId};
use raft_storage::LogStore;
use tokio::sync::watch;
use tracing::info;

use crate::apply::ApplyPool;
use crate::config::RaftConfig;
use crate::error::{Error, Result};
use crate::events::NodeView;
use crate::handle::RaftHandle;
use crate::log_writer::LogWriter;
use crate::metrics::Metrics;
use crate::node::{Lanes, RaftNode};
use crate::state_machine::StateMachine;
use crate::transport::{GroupRoutes, Inbox, Transport, LIVENESS_GROUP};

mod liveness;
mod mux;

use liveness::Liveness;
use mux::{GroupTransport, PeerMux};

/// Events a group's event stream holds for a subscriber that lags behind (a node on
/// its own holds 1,024; a host's groups are many).
const GROUP_EVENTS: usize = 64;

/// How a [`RaftHost`] runs its groups.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HostOptions {
    /// Threads that apply committed entries for all the groups (at least 1). A state
    /// machine that blocks holds one of them.
    pub apply_threads: usize,
    /// The host ticks every group at once, every this long: it replaces each group's
    /// [`RaftConfig::heartbeat_interval`] (the election timeout stays each group's),
    /// so that the heartbeats of all groups to one peer leave together as one batch.
    pub tick_interval: std::time::Duration,
    /// Idle groups quiesce (on by default; [`RaftConfig::quiesce`] for every group
    /// of the host): they stop heartbeating and ticking, and the host's one liveness
    /// beat per peer per tick detects failures for all of them. Every host of a group
    /// must say the same.
    pub quiesce: bool,
    /// A peer host is silent once no liveness beat came from it for this long: the
    /// quiesced groups it leads are woken (and elect another leader if it is gone).
    /// Keep it at the groups' election timeout.
    pub liveness_timeout: std::time::Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        let raft = RaftConfig::default();
        HostOptions {
            apply_threads: 2,
            tick_interval: raft.heartbeat_interval,
            quiesce: true,
            liveness_timeout: raft.election_timeout,
        }
    }
}

impl HostOptions {
    /// Sets [`HostOptions::tick_interval`] (at least 1 ms).
    pub fn tick_interval(mut self, every: std::time::Duration) -> Self {
        self.tick_interval = every.max(std::time::Duration::from_millis(1));
        self
    }

    /// Sets [`HostOptions::quiesce`].
    pub fn quiesce(mut self, on: bool) -> Self {
        self.quiesce = on;
        self
    }

    /// Sets [`HostOptions::liveness_timeout`].
    pub fn liveness_timeout(mut self, after: std::time::Duration) -> Self {
        self.liveness_timeout = after;
        self
    }

    /// Sets [`HostOptions::apply_threads`].
    pub fn apply_threads(mut self, threads: usize) -> Self {
        self.apply_threads = threads.max(1);
        self
    }
}

/// One group a host runs, as [`RaftHost::groups`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's id.
    pub group: GroupId,
    /// Its node's role, term, leader, commit and applied index.
    pub view: NodeView,
    /// Its node's counters.
    pub metrics: Metrics,
}

type Stopping<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the host needs of a group's handle, whatever its state machine.
trait GroupControl: Send + Sync {
    fn info(&self, group: GroupId) -> GroupInfo;
    fn view(&self) -> NodeView;
    fn wake(&self);
    fn shutdown(&self) -> Stopping<'_>;
}

impl<SM: StateMachine> GroupControl for RaftHandle<SM> {
    fn view(&self) -> NodeView {
        RaftHandle::view(self)
    }

    fn wake(&self) {
        RaftHandle::wake(self)
    }

    fn info(&self, group: GroupId) -> GroupInfo {
        GroupInfo {
            group,
            view: self.view(),
            metrics: self.metrics(),
        }
    }

    fn shutdown(&self) -> Stopping<'_> {
        Box::pin(RaftHandle::shutdown(self))
    }
}

/// A group's place on the host: being started (so a second `create_group` of the
/// same id is refused at once), or running.
enum Slot {
    Starting,
    Running(Arc<dyn GroupControl>),
}

struct Inner<S, T> {
    id: NodeId,
    transport: Arc<T>,
    routes: Arc<GroupRoutes>,
    mux: Arc<PeerMux<T>>,
    writer: LogWriter<S>,
    pool: ApplyPool,
    groups: Mutex<BTreeMap<GroupId, Slot>>,
    ticks: watch::Receiver<u64>,
    options: HostOptions,
    /// The task that ticks the groups and runs the liveness beats.
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl<S, T> Drop for Inner<S, T> {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

impl<S, T: Transport> Inner<S, T> {
    /// The running groups' controls.
    fn running(&self) -> Vec<Arc<dyn GroupControl>> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|slot| match slot {
                Slot::Running(c) => Some(c.clone()),
                Slot::Starting => None,
            })
            .collect()
    }
}

/// Ticks every group of the host at once, and runs the liveness beats, until the
/// host is gone.
async fn tick<S: Send + 'static, T: Transport>(host: std::sync::Weak<Inner<S, T>>, ticks: watch::Sender<u64>) {
    let Some(every) = host.upgrade().map(|h| h.options.tick_interval) else {
        return;
    };
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut liveness = None;
    loop {
        interval.tick().await;
        ticks.send_modify(|t| *t = t.wrapping_add(1));
        let Some(host) = host.upgrade() else { return };
        let liveness = liveness.get_or_insert_with(|| Liveness::new(host.id.clone(), host.options.liveness_timeout));
        let running = host.running();
        let groups: Vec<&dyn GroupControl> = running.iter().map(|c| c.as_ref()).collect();
        liveness.tick(&host.mux, &host.routes, &groups);
    }
}

/// Runs many Raft groups on one node: create, remove and list them at run time. Every
/// group on a host uses the same kind of storage `S` (one per group, e.g. a
/// `raft_storage::FileStorage` directory each, or `easyraft::AnyStorage` to mix) and
/// the host's one transport `T`. Cheap to clone.
///
/// ```
/// use raft_cluster::testing::Counter;
/// use raft_cluster::{HostOptions, MemNetwork, RaftConfig, RaftHost};
/// use raft_core::{MemStorage, Membership, Role};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), raft_cluster::Error> {
/// let net = MemNetwork::new();
/// let host = RaftHost::start("n1", net.transport("n1"), HostOptions::default()).await?;
/// // Two groups of one voter each, side by side on the one host.
/// for group in [1, 2] {
///     let voters = Membership::with_voters(["n1"]);
///     let node = host
///         .create_group(group, RaftConfig::fast(), MemStorage::default(), Counter::default(), Some(voters))
///         .await?;
///     let _ = node.watch().wait_for(|v| v.role == Role::Leader).await;
///     assert_eq!(node.group(), group);
///     assert_eq!(node.propose(group * 10).await?, group * 10);
/// }
/// assert_eq!(host.groups().len(), 2);
/// host.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct RaftHost<S, T> {
    inner: Arc<Inner<S, T>>,
}

impl<S, T> Clone for RaftHost<S, T> {
    fn clone(&self) -> Self {
        RaftHost {
            inner: self.inner.clone(),
        }
    }
}

impl<S, T> RaftHost<S, T>
where
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Starts the host: the transport (it serves every group), the log writer and
    /// the apply pool. It runs no group yet.
    pub async fn start(id: impl Into<NodeId>, transport: T, options: HostOptions) -> Result<Self> {
        let id = id.into();
        let transport = Arc::new(transport);
        let routes = Arc::new(GroupRoutes::default());
        transport
            .start(Inbox::for_groups(id.clone(), routes.clone()))
            .await
            .map_err(Error::Transport)?;
        let writer = LogWriter::start(id.as_str()).map_err(|e| Error::Storage(e.into()))?;
        let pool = ApplyPool::start(id.as_str(), options.apply_threads)
            .map_err(|e| Error::Internal(format!("cannot start the apply pool: {e}")))?;
        let (tick_tx, ticks) = watch::channel(0u64);
        let mut options = options;
        options.tick_interval = options.tick_interval.max(std::time::Duration::from_millis(1));
        info!(%id, apply_threads = options.apply_threads, tick = ?options.tick_interval, quiesce = options.quiesce, "host started");
        let inner = Arc::new(Inner {
            mux: Arc::new(PeerMux::new(transport.clone())),
            id,
            transport,
            routes,
            writer,
            pool,
            groups: Mutex::new(BTreeMap::new()),
            ticks,
            options,
            ticker: Mutex::new(None),
        });
        let ticker = tokio::spawn(tick(Arc::downgrade(&inner), tick_tx));
        *inner.ticker.lock().unwrap_or_else(|e| e.into_inner()) = Some(ticker);
        Ok(RaftHost { inner })
    }

    /// The host's node id (every group's node on it has this id).
    pub fn id(&self) -> &NodeId {
        &self.inner.id
    }

    /// The host's inbox: what its transport delivers to, routing each message by its
    /// group (a message for a group the host does not run is refused with
    /// [`crate::InboxError::UnknownGroup`]).
    pub fn inbox(&self) -> Inbox {
        Inbox::for_groups(self.inner.id.clone(), self.inner.routes.clone())
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<GroupId, Slot>> {
        self.inner.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts group `group` on this host, as [`RaftNode::start`] starts a node:
    /// `storage` is the group's own (recovered if it holds state), `bootstrap` the
    /// founding voters of a brand-new group (`None` to join one, added by its leader).
    ///
    /// # Errors
    /// [`Error::GroupExists`] if the host runs the group already; whatever starting
    /// the node reports.
    pub async fn create_group<SM: StateMachine>(
        &self,
        group: GroupId,
        mut config: RaftConfig,
        storage: S,
        state_machine: SM,
        bootstrap: Option<Membership>,
    ) -> Result<RaftHandle<SM>> {
        if group == LIVENESS_GROUP {
            return Err(Error::ReservedGroup(group));
        }
        config.heartbeat_interval = self.inner.options.tick_interval;
        config.quiesce = self.inner.options.quiesce;
        {
            let mut slots = self.slots();
            if slots.contains_key(&group) {
                return Err(Error::GroupExists(group));
            }
            slots.insert(group, Slot::Starting);
        }
        let transport = GroupTransport {
            group,
            mux: self.inner.mux.clone(),
            routes: self.inner.routes.clone(),
        };
        let lanes = Lanes {
            group,
            writer: Some(self.inner.writer.clone()),
            pool: Some(self.inner.pool.clone()),
            ticks: Some(self.inner.ticks.clone()),
            events: GROUP_EVENTS,
        };
        let started = RaftNode::start_in(
            self.inner.id.clone(),
            config,
            storage,
            state_machine,
            transport,
            bootstrap,
            lanes,
        )
        .await;
        let mut slots = self.slots();
        match started {
            Ok(handle) => {
                slots.insert(group, Slot::Running(Arc::new(handle.clone())));
                info!(id = %self.inner.id, group, "group started");
                Ok(handle)
            }
            Err(e) => {
                slots.remove(&group);
                Err(e)
            }
        }
    }

    /// Stops group `group` on this host (its pending requests fail with
    /// [`Error::Stopped`]); from then on its messages are refused with
    /// [`crate::InboxError::UnknownGroup`]. The group's storage is left as it is:
    /// delete it, or start the group again from it.
    ///
    /// # Errors
    /// [`Error::UnknownGroup`] if the host does not run the group.
    pub async fn remove_group(&self, group: GroupId) -> Result<()> {
        let control = {
            let mut slots = self.slots();
            // A group still starting is its `create_group`'s to finish.
            let Some(Slot::Running(c)) = slots.get(&group) else {
                return Err(Error::UnknownGroup(group));
            };
            let c = c.clone();
            slots.remove(&group);
            c
        };
        control.shutdown().await;
        self.inner.routes.remove(group);
        info!(id = %self.inner.id, group, "group removed");
        Ok(())
    }

    /// The groups this host runs, by id.
    pub fn groups(&self) -> Vec<GroupInfo> {
        self.slots()
            .iter()
            .filter_map(|(g, slot)| match slot {
                Slot::Running(c) => Some(c.info(*g)),
                Slot::Starting => None,
            })
            .collect()
    }

    /// Stops every group, then the transport.
    pub async fn shutdown(&self) {
        let running: Vec<(GroupId, Arc<dyn GroupControl>)> = std::mem::take(&mut *self.slots())
            .into_iter()
            .filter_map(|(g, slot)| match slot {
                Slot::Running(c) => Some((g, c)),
                Slot::Starting => None,
            })
            .collect();
        for (group, control) in running {
            control.shutdown().await;
            self.inner.routes.remove(group);
        }
        self.inner.transport.stop().await;
        info!(id = %self.inner.id, "host stopped");
    }
}
