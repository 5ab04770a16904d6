//! `SimCluster`: 3, 5 or 7 nodes on a simulated network, and the driver that carries
//! out each Ready exactly as the contract on [`Ready`] says, with the checker watching
//! every step. Crashes lose what a node had not persisted; restarts rebuild it from
//! its disk.

use bytes::Bytes;

use crate::config::Config;
use crate::error::Error;
use crate::mem_storage::MemStorage;
use crate::membership::MembershipChange;
use crate::message::{Message, MessageBody};
use crate::raw_node::{RawNode, Ready};
use crate::rng::Rng;
use crate::sim::checker::Checker;
use crate::sim::network::{NetFaults, NetStats, Network, SendFate};
use crate::sim::node::{CrashPoint, Life, SimNode};
use crate::sim::shadow::{decode_snapshot, digest_step, encode_snapshot, Payload};
use crate::sim::trace::Trace;
use crate::sim::violation::{Property, Violation};
use crate::storage::Storage;
use crate::types::{LogIndex, Membership, NodeId, Role, Term};

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
    ) -> crate::Result<Self> {
        let mut rng = Rng::new(seed);
        let ids: Vec<NodeId> = (1..=n).map(|i| NodeId::new(format!("n{i}"))).collect();
        let membership = Membership::with_voters(ids.iter().take(voters).cloned());
        let mut nodes = Vec::with_capacity(n);
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
        Ok(SimCluster {
            ids,
            nodes,
            net: Network::new(n, faults, rng.next_u64()),
            rng,
            checker: Checker::new(n),
            now: 0,
            trace: Trace::new(trace_cap),
            stats: ClusterStats::default(),
            unreachable: Vec::new(),
        })
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
        crate::sim::RngExt::below(&mut self.rng, n)
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
        for i in 0..self.len() {
            if self.nodes[i].is_running(self.now) {
                if let Some(raw) = self.nodes[i].raw_mut() {
                    raw.tick();
                }
                self.drive(i)?;
            }
        }
        self.deliver_due()
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

    fn violation(&self, property: Property, detail: String) -> Violation {
        Violation {
            property,
            step: self.now,
            detail,
        }
    }

    /// Hands messages from node `from` to the network.
    fn send_all(&mut self, from: usize, msgs: Vec<Message>) -> Result<(), Violation> {
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

    /// Carries out node `i`'s Readys until it has none, by the contract on [`Ready`].
    fn drive(&mut self, i: usize) -> Result<(), Violation> {
        for _ in 0..MAX_READY_ROUNDS {
            let Some(raw) = self.nodes[i].raw_mut() else {
                return Ok(());
            };
            if !raw.has_ready() {
                return Ok(());
            }
            let mut rd = raw.ready();
            self.trace.record(self.now, || format!("{} ready: {rd}", self.ids[i]));
            self.checker.on_ready(i, &rd)?;
            // 1. Messages that may leave before anything is persisted.
            let crash = self.nodes[i].crashes_during(&rd);
            self.send_all(i, std::mem::take(&mut rd.messages))?;
            if crash {
                let downtime = self.nodes[i].crash_at.map_or(0, |(_, d)| d);
                self.stats.mid_ready_crashes += 1;
                self.crash_now(i, downtime, "in the middle of a Ready: its writes are lost");
                return Ok(());
            }
            // 2. Persist snapshot, entries, hard state.
            self.persist(i, &rd)?;
            self.checker.on_persisted(i, &rd)?;
            // 3. Messages that promise durable state.
            self.send_all(i, std::mem::take(&mut rd.persisted_messages))?;
            // 4. Apply; 5. serve reads.
            self.apply(i, rd)?;
            // 6. Acknowledge.
            let Some(raw) = self.nodes[i].raw_mut() else {
                return Ok(());
            };
            raw.advance();
            self.checker.cross_check(i, raw)?;
            self.report_unreachable(i);
        }
        Err(self.violation(Property::Contract, format!("node {i} keeps producing Readys")))
    }

    /// Tells node `i` which of its sends failed on a cut link.
    fn report_unreachable(&mut self, i: usize) {
        if self.unreachable.is_empty() {
            return;
        }
        let mut rest = Vec::new();
        for (from, to, snapshot) in std::mem::take(&mut self.unreachable) {
            let target = self.ids[to].clone();
            match self.nodes[from].raw_mut() {
                Some(raw) if from == i => {
                    raw.report_unreachable(&target);
                    if snapshot {
                        raw.report_snapshot(&target, false);
                    }
                }
                Some(_) => rest.push((from, to, snapshot)),
                None => {}
            }
        }
        self.unreachable = rest;
    }

    fn persist(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(());
        };
        let store = raw.storage_mut();
        if let Some(s) = &rd.snapshot {
            store.apply_snapshot(s.clone());
        }
        if let Err(e) = store.append(&rd.entries) {
            return Err(self.violation(
                Property::Contract,
                format!("node {i}: storage refused the Ready's entries: {e}"),
            ));
        }
        if let Some(hs) = &rd.hard_state {
            store.set_hard_state(hs.clone());
        }
        Ok(())
    }

    fn apply(&mut self, i: usize, rd: Ready) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        if let Some(s) = &rd.snapshot {
            self.checker.on_install(i, s)?;
            self.stats.snapshots_installed += 1;
            node.applied = s.meta.index;
            node.digest = decode_snapshot(&s.data).map_or(0, |(_, d)| d);
        }
        for e in &rd.committed_entries {
            self.checker.on_apply(i, e)?;
            node.applied = e.index;
            node.digest = digest_step(node.digest, e.index, (e.term, Payload::of(e)));
        }
        for rs in rd.read_states {
            self.checker.on_read_state(i, &rs)?;
            self.nodes[i].reads.push(rs);
        }
        let applied = self.nodes[i].applied;
        let before = self.nodes[i].reads.len();
        self.nodes[i].reads.retain(|r| r.index > applied);
        self.stats.reads_served += (before - self.nodes[i].reads.len()) as u64;
        Ok(())
    }

    /// Crashes node `i` at `point`, to come back `downtime` ticks later.
    pub fn crash(&mut self, i: usize, point: CrashPoint, downtime: u64) {
        if !self.nodes[i].is_up() {
            return;
        }
        match point {
            CrashPoint::Now => self.crash_now(i, downtime, "between inputs"),
            armed => {
                self.trace
                    .record(self.now, || format!("{} will crash at {armed:?}", self.ids[i]));
                self.nodes[i].crash_at = Some((armed, downtime));
            }
        }
    }

    fn crash_now(&mut self, i: usize, downtime: u64, how: &str) {
        self.stats.crashes += 1;
        let restart_at = self.now + downtime;
        self.trace.record(self.now, || {
            format!("{} CRASH {how}; restarts at {restart_at}", self.ids[i])
        });
        self.nodes[i].crash(restart_at);
        self.checker.on_crash(i);
    }

    fn restart(&mut self, i: usize) -> Result<(), Violation> {
        let seed = self.rng.next_u64();
        if let Err(e) = self.nodes[i].restart(seed) {
            return Err(self.violation(
                Property::Contract,
                format!("node {i} could not restart from its disk: {e}"),
            ));
        }
        self.stats.restarts += 1;
        self.trace.record(self.now, || format!("{} RESTART", self.ids[i]));
        if let Some(raw) = self.nodes[i].raw() {
            self.checker.on_restart(i, raw)?;
        }
        self.drive(i)
    }

    /// Brings every crashed node back now and clears armed crash points.
    pub fn restart_all(&mut self) -> Result<(), Violation> {
        for i in 0..self.len() {
            self.nodes[i].crash_at = None;
            self.nodes[i].paused_until = self.nodes[i].paused_until.min(self.now);
            if let Life::Down { restart_at, .. } = &mut self.nodes[i].life {
                *restart_at = self.now;
                self.restart(i)?;
            }
        }
        Ok(())
    }

    /// The application of node `i` snapshots its state machine at its applied index
    /// (with `pad` filler bytes, so the snapshot spans chunks) and compacts the log.
    pub fn compact(&mut self, i: usize, pad: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let (applied, digest) = (node.applied, node.digest);
        let Some(raw) = node.raw_mut() else { return Ok(()) };
        if applied < raw.storage().first_index().unwrap_or(1) {
            return Ok(());
        }
        match raw.create_snapshot(applied, encode_snapshot(applied, digest, pad)) {
            Ok(snap) => {
                self.checker.on_compact(i, &snap)?;
                self.trace.record(self.now, || {
                    format!("{} COMPACT at {}/{}", self.ids[i], snap.meta.index, snap.meta.term)
                });
                raw.storage_mut().apply_snapshot(snap);
                self.stats.compactions += 1;
                self.drive(i)
            }
            Err(e) => Err(self.violation(
                Property::Contract,
                format!("node {i} could not snapshot at applied {applied}: {e}"),
            )),
        }
    }

    /// Takes node `i` out of service for good (it was removed from the cluster).
    pub fn decommission(&mut self, i: usize) {
        if self.nodes[i].is_up() {
            self.trace
                .record(self.now, || format!("{} DECOMMISSIONED", self.ids[i]));
            self.nodes[i].crash(u64::MAX);
            self.checker.on_crash(i);
        }
    }

    /// Proposes a membership change at node `i`; returns whether it was accepted.
    pub fn change_membership(&mut self, i: usize, changes: &[MembershipChange]) -> Result<bool, Violation> {
        if !self.nodes[i].is_running(self.now) {
            return Ok(false);
        }
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(false);
        };
        let r = raw.propose_membership_change(changes);
        self.stats.membership_changes += u64::from(r.is_ok());
        self.trace.record(self.now, || {
            format!("client membership {changes:?} at {}: {r:?}", self.ids[i])
        });
        self.drive(i)?;
        Ok(r.is_ok())
    }

    /// Pauses node `i` for `ticks`: it neither ticks nor receives (messages wait).
    pub fn pause(&mut self, i: usize, ticks: u64) {
        if self.nodes[i].is_running(self.now) {
            self.stats.pauses += 1;
            self.nodes[i].paused_until = self.now + ticks;
            self.trace
                .record(self.now, || format!("{} PAUSE for {ticks} ticks", self.ids[i]));
        }
    }

    /// A client proposes commands (8-byte ids) at node `i`. `Ok(Err(_))` is the
    /// node's refusal (not the leader...), `Err` a violation.
    pub fn propose(&mut self, i: usize, ids: &[u64]) -> Result<Result<(Term, LogIndex), Error>, Violation> {
        if !self.nodes[i].is_running(self.now) {
            return Ok(Err(Error::NotLeader { leader_hint: None }));
        }
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(Err(Error::NotLeader { leader_hint: None }));
        };
        let cmds: Vec<Bytes> = ids.iter().map(|id| Bytes::copy_from_slice(&id.to_le_bytes())).collect();
        let r = raw.propose_batch(cmds);
        match &r {
            Ok(_) => self.stats.proposals_accepted += ids.len() as u64,
            Err(_) => self.stats.proposals_refused += 1,
        }
        self.trace
            .record(self.now, || format!("client propose {ids:?} at {}: {r:?}", self.ids[i]));
        self.drive(i)?;
        Ok(r)
    }

    /// A client starts a linearizable read with id `read` at node `i`; returns
    /// whether the node took it.
    pub fn read(&mut self, i: usize, read: u64) -> Result<bool, Violation> {
        if !self.nodes[i].is_running(self.now) {
            return Ok(false);
        }
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(false);
        };
        self.checker.on_read_start(read);
        let ok = raw.read_index(Bytes::copy_from_slice(&read.to_le_bytes())).is_ok();
        self.stats.reads_started += u64::from(ok);
        self.trace.record(self.now, || {
            format!("client read #{read} at {}: accepted={ok}", self.ids[i])
        });
        self.drive(i)?;
        Ok(ok)
    }

    /// Node `i` starts an election now (as a test scripting a scenario would).
    pub fn campaign(&mut self, i: usize) -> Result<(), Violation> {
        let Some(raw) = self.nodes[i].raw_mut() else {
            return Ok(());
        };
        raw.campaign();
        self.trace.record(self.now, || format!("{} CAMPAIGN", self.ids[i]));
        self.drive(i)
    }

    /// Asks node `i` to hand leadership to node `to`.
    pub fn transfer(&mut self, i: usize, to: usize) -> Result<(), Violation> {
        let target = self.ids[to].clone();
        let Some(raw) = self.nodes[i].raw_mut().filter(|r| r.role() == Role::Leader) else {
            return Ok(());
        };
        let r = raw.transfer_leader(target);
        self.stats.transfers += u64::from(r.is_ok());
        self.trace.record(self.now, || {
            format!("{} transfer leadership to n{}: {r:?}", self.ids[i], to + 1)
        });
        self.drive(i)
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
