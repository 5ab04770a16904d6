//! `SimCluster`: 3, 5 or 7 nodes on a simulated network, time and message delivery.
//! The driver that carries out each Ready is in `driver.rs`; what the outside world
//! does to the nodes (clients, crashes, pauses, the application's compactions) in
//! `inputs.rs`.

mod driver;
mod inputs;

use raft_core::{Config, LogIndex, MemStorage, Membership, Message, MessageBody, NodeId, RawNode, Role};

use crate::checker::Checker;
use crate::liveness::{Liveness, LivenessStats};
use crate::network::{NetFaults, NetStats, Network, SendFate};
use crate::node::SimNode;
use crate::trace::Trace;
use crate::violation::{Property, Violation};
use raft_core::Rng;

/// A runaway exchange of messages within one tick is reported rather than looped on.
const MAX_DELIVERIES_PER_TICK: usize = 100_000;
/// Readys in a row from one node before the driver reports that it never settles.
const MAX_READY_ROUNDS: usize = 64;

/// Counters of the faults and client calls a cluster saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Crashes between inputs.
    pub crashes: u64,
    /// Crashes in the middle of a Ready (messages sent, nothing persisted).
    pub mid_ready_crashes: u64,
    /// Restarts from disk.
    pub restarts: u64,
    /// Pauses (a node stops ticking and receiving for a while).
    pub pauses: u64,
    /// Commands the leader accepted.
    pub proposals_accepted: u64,
    /// Proposals refused (not the leader, transfer in progress).
    pub proposals_refused: u64,
    /// ReadIndex requests accepted by a node.
    pub reads_started: u64,
    /// Reads served (their index applied).
    pub reads_served: u64,
    /// Leadership transfers started.
    pub transfers: u64,
    /// Snapshots the application made (compacting the log).
    pub compactions: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Membership changes the leader accepted.
    pub membership_changes: u64,
    /// Writes that completed at a later step than their Ready (the node ran on).
    pub late_writes: u64,
    /// Writes a crash lost: outstanding, or the one of the Ready it struck.
    pub writes_lost: u64,
}

/// A simulated cluster. Nodes are numbered `0..n` and named `n1..=nN`.
pub struct SimCluster {
    ids: Vec<NodeId>,
    nodes: Vec<SimNode>,
    net: Network,
    rng: Rng,
    checker: Checker,
    now: u64,
    trace: Trace,
    stats: ClusterStats,
    /// Sends that failed on a cut link, reported back to the sender (as a transport
    /// that notices a refused connection would): `(from, to, was a snapshot chunk)`.
    unreachable: Vec<(usize, usize, bool)>,
    /// The longest a write takes to complete, in steps (0: within the Ready).
    max_persist_delay: u64,
    /// The hosts' node-level liveness beats, when the nodes quiesce
    /// (`Config::quiesce`): see `liveness.rs`.
    liveness: Option<Liveness>,
}

impl SimCluster {
    /// A fresh cluster of `n` nodes, of which the first `voters` form the initial
    /// configuration and the others wait outside it (empty, until a leader adds them).
    /// `config(i)` gives node `i`'s configuration (its id is set here); `seed` drives
    /// every random choice of the simulation.
    pub fn new(
        n: usize,
        voters: usize,
        seed: u64,
        mut config: impl FnMut(usize) -> Config,
        faults: NetFaults,
        trace_cap: usize,
    ) -> raft_core::Result<Self> {
        let mut rng = Rng::new(seed);
        let ids: Vec<NodeId> = (1..=n).map(|i| NodeId::new(format!("n{i}"))).collect();
        let membership = Membership::with_voters(ids.iter().take(voters).cloned());
        let mut nodes: Vec<SimNode> = Vec::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            let mut c = config(i);
            c.id = id.clone();
            c.seed = rng.next_u64();
            let initial = if i < voters {
                membership.clone()
            } else {
                Membership::default()
            };
            nodes.push(SimNode::new(c, MemStorage::new(initial))?);
        }
        let liveness = nodes.iter().any(|s| s.config.quiesce).then(|| Liveness::new(n, seed));
        Ok(SimCluster {
            liveness,
            ids,
            nodes,
            net: Network::new(n, faults, rng.next_u64()),
            rng,
            checker: Checker::new(n),
            now: 0,
            trace: Trace::new(trace_cap),
            stats: ClusterStats::default(),
            unreachable: Vec::new(),
            max_persist_delay: 0,
        })
    }

    /// Each write then completes after a delay drawn from `0..=steps` (in order, so
    /// never before the one ahead of it); meanwhile the node goes on ticking and
    /// taking messages, and a crash loses it. 0 (the default) completes every write
    /// within its Ready.
    pub fn set_max_persist_delay(&mut self, steps: u64) {
        self.max_persist_delay = steps;
    }

    /// Writes still outstanding on node `i`'s disk.
    pub fn writes_outstanding(&self, i: usize) -> usize {
        self.nodes[i].disk_queue.len()
    }

    /// The current step (tick).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The simulation's RNG (the scenario draws its faults and clients from it too).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A node drawn at random.
    pub(crate) fn random_node(&mut self) -> usize {
        let n = self.len();
        crate::RngExt::below(&mut self.rng, n)
    }

    /// The network, to cut and heal links.
    pub fn network(&mut self) -> &mut Network {
        &mut self.net
    }

    /// The checker, for its statistics and history.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// What the network did so far.
    pub fn network_stats(&self) -> NetStats {
        self.net.stats()
    }

    /// The cut links, e.g. `0->1 1->0`.
    pub fn describe_cuts(&self) -> String {
        self.net.describe_cuts()
    }

    /// What happened so far.
    pub fn stats(&self) -> ClusterStats {
        self.stats
    }

    /// The recent events (recorded only if the cluster was made with a trace).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Records a line in the trace.
    pub fn note(&mut self, line: impl FnOnce() -> String) {
        self.trace.record(self.now, line);
    }

    /// The live node `i`, if it is up.
    pub fn node(&self, i: usize) -> Option<&RawNode<MemStorage>> {
        self.nodes.get(i).and_then(SimNode::raw)
    }

    /// The id of node `i`.
    pub fn id(&self, i: usize) -> &NodeId {
        &self.ids[i]
    }

    /// The configuration node `i` (if up) has in effect.
    pub fn membership_of(&self, i: usize) -> Option<Membership> {
        self.node(i).map(|r| r.status().membership)
    }

    /// The index of the node named `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    /// Whether node `i` is up (not crashed).
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_up()
    }

    /// Whether node `i` is up and not paused.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_running(self.now)
    }

    /// The applied index of node `i`'s state machine (0 while it is down).
    pub fn applied(&self, i: usize) -> LogIndex {
        self.nodes[i].applied
    }

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len())
            .filter(|&i| self.is_running(i))
            .filter_map(|i| self.node(i).filter(|r| r.role() == Role::Leader).map(|r| (r.term(), i)))
            .max()
            .map(|(_, i)| i)
    }

    /// One line per node.
    pub fn describe(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.describe(self.now)).collect()
    }

    /// Advances time by one tick: nodes due to restart come up, every running node
    /// ticks, then every message due is delivered (replies due at once within the
    /// same tick).
    pub fn tick(&mut self) -> Result<(), Violation> {
        self.now += 1;
        self.checker.set_step(self.now);
        for i in 0..self.len() {
            if self.nodes[i].restart_due(self.now) {
                self.restart(i)?;
            }
        }
        self.beat_and_wake()?;
        let hosts_stop_quiesced = self.liveness.is_some();
        for i in 0..self.len() {
            if self.nodes[i].is_running(self.now) {
                if let Some(raw) = self.nodes[i].raw_mut() {
                    // The host stops a quiesced group's ticker (the tick would be a
                    // no-op anyway, but its lease clock must not run either).
                    if !(hosts_stop_quiesced && raw.is_quiesced()) {
                        raw.tick();
                    }
                }
                self.drive(i)?;
            }
        }
        self.deliver_due()
    }

    /// With quiescing nodes: this tick's liveness beats, and the hosts' `wake` calls
    /// they call for (`liveness.rs`).
    fn beat_and_wake(&mut self) -> Result<(), Violation> {
        let Some(live) = self.liveness.as_mut() else {
            return Ok(());
        };
        let (now, nodes, net) = (self.now, &self.nodes, &self.net);
        live.exchange(now, net.faults().drop_per_mille, |from, to| {
            nodes[from].is_running(now) && nodes[to].is_running(now) && !net.is_cut(from, to)
        });
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_running(now) {
                continue;
            }
            let Some(raw) = self.nodes[i].raw() else { continue };
            if raw.is_quiesced() {
                if let Some(live) = self.liveness.as_mut() {
                    live.stats.quiesced_node_ticks += 1;
                }
            }
            let leader = raw.leader().and_then(|l| self.ids.iter().position(|x| x == l));
            let election_tick = self.nodes[i].config.election_tick;
            let Some(live) = self.liveness.as_mut() else { break };
            let rule = live.rule_for(i, now, election_tick, leader);
            let Some(rule) = rule.filter(|_| raw.is_quiesced()) else {
                continue;
            };
            live.count(rule);
            self.trace
                .record(now, || format!("{} host wakes its group ({rule:?})", self.ids[i]));
            if let Some(raw) = self.nodes[i].raw_mut() {
                raw.wake();
            }
            self.drive(i)?;
        }
        Ok(())
    }

    /// What the hosts' liveness beats did (`None` unless the nodes quiesce).
    pub fn liveness_stats(&self) -> Option<LivenessStats> {
        self.liveness.as_ref().map(|l| l.stats)
    }

    /// Whether node `i` is up and quiesced.
    pub fn is_quiesced(&self, i: usize) -> bool {
        self.node(i).is_some_and(|r| r.is_quiesced())
    }

    fn deliver_due(&mut self) -> Result<(), Violation> {
        let mut delivered = 0;
        while let Some((from, to, msg)) = self.net.pop_due(self.now) {
            delivered += 1;
            if delivered > MAX_DELIVERIES_PER_TICK {
                return Err(self.violation(
                    Property::Liveness,
                    "message storm: no end to deliveries within one tick".into(),
                ));
            }
            let node = &mut self.nodes[to];
            if node.paused_until > self.now && node.is_up() {
                let at = node.paused_until;
                self.net.hold(at, from, to, msg);
                continue;
            }
            let Some(raw) = node.raw_mut() else {
                self.trace.record(self.now, || format!("lost (receiver down) {msg}"));
                continue;
            };
            self.trace.record(self.now, || format!("deliver {msg}"));
            if let Err(e) = raw.step(msg) {
                return Err(self.violation(Property::Contract, format!("node {to} refused a message: {e}")));
            }
            self.drive(to)?;
        }
        Ok(())
    }

    pub(super) fn violation(&self, property: Property, detail: String) -> Violation {
        Violation {
            property,
            step: self.now,
            detail,
        }
    }

    /// Hands messages from node `from` to the network.
    pub(super) fn send_all(&mut self, from: usize, msgs: Vec<Message>) -> Result<(), Violation> {
        for m in msgs {
            let Some(to) = self.index_of(&m.to) else {
                return Err(self.violation(Property::Contract, format!("message to an unknown node: {m}")));
            };
            let snapshot = matches!(m.body, MessageBody::InstallSnapshot(_));
            let line = self.trace.enabled().then(|| m.to_string());
            let fate = self.net.send(self.now, from, to, m);
            if fate == SendFate::Cut {
                self.unreachable.push((from, to, snapshot));
            }
            if let Some(line) = line {
                self.trace.record(self.now, || match fate {
                    SendFate::Queued { copies: 1 } => format!("send {line}"),
                    SendFate::Queued { .. } => format!("send (duplicated) {line}"),
                    SendFate::Dropped => format!("drop {line}"),
                    SendFate::Cut => format!("cut {line}"),
                });
            }
        }
        Ok(())
    }

    /// Checks every live node's whole log against the checker's shadow.
    pub fn full_check(&self) -> Result<(), Violation> {
        for i in 0..self.len() {
            if let Some(raw) = self.node(i) {
                self.checker.full_check(i, raw)?;
            }
        }
        Ok(())
    }
}
