//! The interaction environment behind the testdata files: real `RawNode`s on
//! `MemStorage`, a message queue the file controls, and a printout of every Ready.
//! Nodes are named `1`, `2`, …; each Ready is carried out synchronously by the
//! contract in `raft_core::Ready` (persist, send, apply, `advance`).

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;
use raft_core::{
    AppendResponse, Config, Entry, EntryPayload, MemStorage, Membership, MembershipChange, Message, MessageBody,
    NodeId, ProgressState, RawNode, Ready, Role, Storage,
};

use super::runner::TestCase;

const ELECTION_TICK: u64 = 10;
const HEARTBEAT_TICK: u64 = 1;

pub struct Env {
    nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    configs: BTreeMap<NodeId, Config>,
    queue: Vec<Message>,
    /// Links that lose every message, (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
}

fn nid(s: &str) -> NodeId {
    NodeId::new(s)
}

fn set(ids: &BTreeSet<NodeId>) -> String {
    let v: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    format!("({})", v.join(","))
}

fn membership(m: &Membership) -> String {
    let mut s = format!("voters={}", set(&m.voters));
    if m.is_joint() {
        let _ = write!(s, "&&{}", set(&m.voters_outgoing));
    }
    if !m.learners.is_empty() {
        let _ = write!(s, " learners={}", set(&m.learners));
    }
    s
}

/// `index@tterm payload`, e.g. `3@t2 "x"`.
pub fn entry(e: &Entry) -> String {
    let payload = match &e.payload {
        EntryPayload::Noop => "noop".to_string(),
        EntryPayload::Command(b) => format!("{:?}", String::from_utf8_lossy(b)),
        EntryPayload::Membership(m) => format!("conf {}", membership(m)),
    };
    format!("{}@t{} {payload}", e.index, e.term)
}

fn entries(es: &[Entry]) -> String {
    es.iter().map(entry).collect::<Vec<_>>().join(", ")
}

/// One line per message; the kind is the enum's own name (`MessageBody::kind`), the
/// fields come from an exhaustive match, so a new message kind fails to compile here.
pub fn message(m: &Message) -> String {
    let head = format!("{}->{} {} term={}", m.from, m.to, m.body.kind(), m.term);
    let tail = match &m.body {
        MessageBody::RequestVote(v) => format!(
            "{}last={}@t{}{}",
            if v.pre_vote { "pre-vote " } else { "" },
            v.last_log_index,
            v.last_log_term,
            if v.leadership_transfer { " transfer" } else { "" }
        ),
        MessageBody::RequestVoteResponse(v) => format!(
            "{}{}",
            if v.pre_vote { "pre-vote " } else { "" },
            if v.granted { "granted" } else { "rejected" }
        ),
        MessageBody::AppendEntries(a) => format!(
            "prev={}@t{} commit={} entries=[{}]",
            a.prev_log_index,
            a.prev_log_term,
            a.commit,
            entries(&a.entries)
        ),
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { match_index }) => {
            format!("accepted match={match_index}")
        }
        MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
            rejected_index,
            hint_index,
            hint_term,
        }) => format!("rejected prev={rejected_index} hint={hint_index}@t{hint_term}"),
        MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm) => "stale-term".to_string(),
        MessageBody::Heartbeat(h) => format!("commit={} round={}", h.commit, h.read_round),
        MessageBody::HeartbeatResponse(h) => format!("round={}", h.read_round),
        MessageBody::InstallSnapshot(s) => format!(
            "snapshot={}@t{} {} offset={} len={}{}",
            s.meta.index,
            s.meta.term,
            membership(&s.meta.membership),
            s.offset,
            s.data.len(),
            if s.done { " done" } else { "" }
        ),
        MessageBody::InstallSnapshotResponse(s) => format!(
            "snapshot={} last={} received={}{}",
            s.index,
            s.last_index,
            s.received,
            if s.done { " done" } else { "" }
        ),
        MessageBody::TimeoutNow => String::new(),
        MessageBody::ReadIndex(r) => format!("ctx={:?}", String::from_utf8_lossy(&r.context)),
        MessageBody::ReadIndexResponse(r) => {
            format!("ctx={:?} index={}", String::from_utf8_lossy(&r.context), r.index)
        }
        MessageBody::Quiesce(q) => format!(
            "commit={} last={}@t{} round={}",
            q.commit, q.last_index, q.last_term, q.read_round
        ),
    };
    if tail.is_empty() {
        head
    } else {
        format!("{head} {tail}")
    }
}

/// Whether `sel` picks `m`: a node id picks the messages to it, `FROM->TO` one link.
fn picks(sel: &BTreeSet<String>, m: &Message) -> bool {
    sel.contains(m.to.as_str()) || sel.contains(&format!("{}->{}", m.from, m.to))
}

/// Prints a proposal's outcome: where it went in the log, or the core's refusal.
fn report(out: &mut String, r: raft_core::Result<(u64, u64)>) {
    let _ = match r {
        Ok((term, index)) => writeln!(out, "proposed at {index}@t{term}"),
        Err(e) => writeln!(out, "error: {e}"),
    };
}

fn ids_of(vals: Option<&[String]>) -> BTreeSet<NodeId> {
    vals.unwrap_or(&[]).iter().map(|s| nid(s)).collect()
}

fn bool_arg(c: &TestCase, key: &str, default: bool) -> Result<bool, String> {
    match c.vals(key) {
        None => Ok(default),
        Some([v]) => v.parse().map_err(|_| format!("{key}={v}: not true/false")),
        Some(v) => Err(format!("{key}: one value, got {v:?}")),
    }
}

impl Env {
    pub fn new() -> Self {
        Env {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            queue: Vec::new(),
            cut: BTreeSet::new(),
        }
    }

    /// Runs one command and returns what it printed. An error the core returns (a
    /// refused proposal, say) is part of the output, `error: …`; `Err` is a broken
    /// script (unknown command or node, bad arguments), which fails the file even
    /// under REWRITE.
    pub fn run(&mut self, c: &TestCase) -> Result<String, String> {
        let mut out = String::new();
        self.dispatch(c, &mut out)?;
        Ok(out)
    }

    fn node(&mut self, id: &str) -> Result<&mut RawNode<MemStorage>, String> {
        self.nodes.get_mut(&nid(id)).ok_or_else(|| format!("no node {id}"))
    }

    fn one_id(c: &TestCase) -> Result<&str, String> {
        match c.positional()[..] {
            [id] => Ok(id),
            _ => Err(format!("`{}` takes one node id", c.cmd)),
        }
    }

    fn dispatch(&mut self, c: &TestCase, out: &mut String) -> Result<(), String> {
        match c.cmd.as_str() {
            "add-nodes" => self.add_nodes(c),
            "campaign" => {
                self.node(Self::one_id(c)?)?.campaign();
                Ok(())
            }
            "wake" => {
                self.node(Self::one_id(c)?)?.wake();
                Ok(())
            }
            "propose" => {
                let [id, data] = c.positional()[..] else {
                    return Err("propose ID DATA".into());
                };
                let r = self.node(id)?.propose(Bytes::from(data.to_string()));
                report(out, r);
                Ok(())
            }
            "propose-conf-change" => self.conf_change(c, out),
            "transfer-leader" => {
                let [from, to] = c.positional()[..] else {
                    return Err("transfer-leader FROM TO".into());
                };
                if let Err(e) = self.node(from)?.transfer_leader(nid(to)) {
                    let _ = writeln!(out, "error: {e}");
                }
                Ok(())
            }
            "tick-heartbeat" => {
                let n = self.node(Self::one_id(c)?)?;
                for _ in 0..HEARTBEAT_TICK {
                    n.tick();
                }
                Ok(())
            }
            "tick-election" => {
                // Ticks through the node's election timeout (randomized in
                // [election_tick, 2 * election_tick)) and stops at its effect: a
                // leader's check-quorum step-down, anyone else's (pre-)campaign.
                let n = self.node(Self::one_id(c)?)?;
                let before = (n.role(), n.term());
                for _ in 0..2 * ELECTION_TICK {
                    n.tick();
                    let changed = (n.role(), n.term()) != before;
                    if changed || (before.0 != Role::Leader && n.has_ready()) {
                        break;
                    }
                }
                Ok(())
            }
            "process-ready" => {
                let ids = c.positional();
                if ids.is_empty() {
                    return Err("process-ready ID…".into());
                }
                for id in ids {
                    self.process_ready(&nid(id), out)?;
                }
                Ok(())
            }
            "deliver-msgs" => {
                let only: BTreeSet<String> = c.positional().iter().map(|s| s.to_string()).collect();
                let drop: BTreeSet<String> = c.vals("drop").unwrap_or(&[]).iter().cloned().collect();
                self.deliver(&only, &drop, true, out);
                Ok(())
            }
            "stabilize" => self.stabilize(out),
            "status" => self.status(Self::one_id(c)?, out),
            "raft-log" => self.raft_log(Self::one_id(c)?, out),
            "isolate" => {
                let id = nid(Self::one_id(c)?);
                for other in self.nodes.keys() {
                    if *other != id {
                        self.cut.insert((id.clone(), other.clone()));
                        self.cut.insert((other.clone(), id.clone()));
                    }
                }
                Ok(())
            }
            "restart" => {
                // A crash and restart: only what was persisted survives.
                let id = nid(Self::one_id(c)?);
                let old = self.nodes.remove(&id).ok_or_else(|| format!("no node {id}"))?;
                let node = RawNode::new(self.configs[&id].clone(), old.into_storage()).map_err(|e| e.to_string())?;
                self.nodes.insert(id, node);
                Ok(())
            }
            "recover" => {
                self.cut.clear();
                Ok(())
            }
            "compact" => {
                let id = Self::one_id(c)?;
                let n = self.node(id)?;
                let applied = n.status().applied;
                let snap = match n.create_snapshot(applied, Bytes::from(format!("state@{applied}"))) {
                    Ok(snap) => snap,
                    Err(e) => {
                        let _ = writeln!(out, "error: {e}");
                        return Ok(());
                    }
                };
                let _ = writeln!(
                    out,
                    "snapshot {}@t{} {}",
                    snap.meta.index,
                    snap.meta.term,
                    membership(&snap.meta.membership)
                );
                n.storage_mut().apply_snapshot(snap);
                Ok(())
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn add_nodes(&mut self, c: &TestCase) -> Result<(), String> {
        let [n] = c.positional()[..] else {
            return Err("add-nodes N [voters=(…)] [learners=(…)] [pre-vote=…] [check-quorum=…] [quiesce=…]".into());
        };
        let n: usize = n.parse().map_err(|_| format!("add-nodes {n}: not a number"))?;
        let start = self.nodes.len() + 1;
        let new: Vec<NodeId> = (start..start + n).map(|i| nid(&i.to_string())).collect();
        let mut m = Membership {
            voters: ids_of(c.vals("voters")),
            voters_outgoing: BTreeSet::new(),
            learners: ids_of(c.vals("learners")),
        };
        if m.voters.is_empty() && m.learners.is_empty() && self.nodes.is_empty() {
            m.voters = new.iter().cloned().collect();
        }
        let pre_vote = bool_arg(c, "pre-vote", true)?;
        let check_quorum = bool_arg(c, "check-quorum", true)?;
        let quiesce = bool_arg(c, "quiesce", false)?;
        let max_entries = match c.vals("max-entries-per-msg") {
            None => None,
            Some([v]) => Some(v.parse::<usize>().map_err(|_| format!("max-entries-per-msg={v}"))?),
            Some(v) => return Err(format!("max-entries-per-msg: one value, got {v:?}")),
        };
        for (i, id) in new.into_iter().enumerate() {
            let mut cfg = Config::new(id.clone());
            cfg.election_tick = ELECTION_TICK;
            cfg.heartbeat_tick = HEARTBEAT_TICK;
            cfg.pre_vote = pre_vote;
            cfg.check_quorum = check_quorum;
            cfg.quiesce = quiesce;
            cfg.seed = (start + i) as u64;
            if let Some(n) = max_entries {
                cfg.max_entries_per_msg = n;
            }
            self.configs.insert(id.clone(), cfg.clone());
            let node = RawNode::new(cfg, MemStorage::new(m.clone())).map_err(|e| e.to_string())?;
            self.nodes.insert(id, node);
        }
        Ok(())
    }

    fn conf_change(&mut self, c: &TestCase, out: &mut String) -> Result<(), String> {
        let id = Self::one_id(c)?;
        let mut changes = Vec::new();
        for a in &c.args {
            let make: fn(NodeId) -> MembershipChange = match a.key.as_str() {
                "add-voter" => MembershipChange::AddVoter,
                "add-learner" => MembershipChange::AddLearner,
                "promote" => MembershipChange::PromoteLearner,
                "remove" => MembershipChange::Remove,
                _ if a.vals.is_empty() => continue,
                k => return Err(format!("unknown change {k:?}")),
            };
            changes.extend(a.vals.iter().map(|v| make(nid(v))));
        }
        let r = self.node(id)?.propose_membership_change(&changes);
        report(out, r);
        Ok(())
    }

    /// Carries out one Ready of `id`: persist, queue its messages, apply, advance.
    fn process_ready(&mut self, id: &NodeId, out: &mut String) -> Result<(), String> {
        let n = self.nodes.get_mut(id).ok_or_else(|| format!("no node {id}"))?;
        if !n.has_ready() {
            let _ = writeln!(out, "> {id}: nothing ready");
            return Ok(());
        }
        let rd: Ready = n.ready();
        let _ = writeln!(out, "> {id} ready");
        if let Some(ss) = &rd.soft_state {
            let leader = ss.leader.as_ref().map_or("none".to_string(), |l| l.to_string());
            let quiesced = if ss.quiesced { " quiesced" } else { "" };
            let _ = writeln!(out, "  {} term={} leader={leader}{quiesced}", ss.role, ss.term);
        }
        if let Some(hs) = &rd.hard_state {
            let vote = hs.vote.as_ref().map_or("none".to_string(), |v| v.to_string());
            let _ = writeln!(out, "  hard-state term={} vote={vote} commit={}", hs.term, hs.commit);
        }
        if let Some(s) = &rd.snapshot {
            let _ = writeln!(
                out,
                "  install snapshot {}@t{} {}",
                s.meta.index,
                s.meta.term,
                membership(&s.meta.membership)
            );
        }
        if !rd.entries.is_empty() {
            let _ = writeln!(out, "  append {}", entries(&rd.entries));
        }
        if !rd.committed_entries.is_empty() {
            let _ = writeln!(out, "  apply {}", entries(&rd.committed_entries));
        }
        for m in rd.messages.iter().chain(&rd.persisted_messages) {
            let _ = writeln!(out, "  {}", message(m));
        }
        let store = n.storage_mut();
        if let Some(s) = rd.snapshot {
            store.apply_snapshot(s);
        }
        store.append(&rd.entries).map_err(|e| e.to_string())?;
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        self.queue.extend(rd.messages);
        self.queue.extend(rd.persisted_messages);
        n.advance();
        Ok(())
    }

    /// Delivers the queued messages to `only` (everyone if empty), dropping those to
    /// `drop` and those on cut links; the rest stay queued.
    fn deliver(&mut self, only: &BTreeSet<String>, drop: &BTreeSet<String>, print: bool, out: &mut String) -> bool {
        let (take, keep): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| only.is_empty() || picks(only, m) || picks(drop, m));
        self.queue = keep;
        let any = !take.is_empty();
        for m in take {
            let line = message(&m);
            let lost = picks(drop, &m) || self.cut.contains(&(m.from.clone(), m.to.clone()));
            match self.nodes.get_mut(&m.to) {
                Some(_) if lost => {
                    let _ = writeln!(out, "dropped {line}");
                }
                None => {
                    let _ = writeln!(out, "dropped {line} (no such node)");
                }
                Some(node) => {
                    if print {
                        let _ = writeln!(out, "{line}");
                    }
                    if let Err(e) = node.step(m) {
                        let _ = writeln!(out, "  error: {e}");
                    }
                }
            }
        }
        any
    }

    /// Processes Readies and delivers messages until nothing is left to do.
    fn stabilize(&mut self, out: &mut String) -> Result<(), String> {
        for _ in 0..1000 {
            let ids: Vec<NodeId> = self.nodes.keys().cloned().collect();
            let mut any = false;
            for id in &ids {
                if self.nodes[id].has_ready() {
                    any = true;
                    self.process_ready(id, out)?;
                }
            }
            any |= self.deliver(&BTreeSet::new(), &BTreeSet::new(), false, out);
            if !any {
                return Ok(());
            }
        }
        Err("did not stabilize in 1000 rounds".into())
    }

    fn status(&mut self, id: &str, out: &mut String) -> Result<(), String> {
        let st = self.node(id)?.status();
        let leader = st.leader.as_ref().map_or("none".to_string(), |l| l.to_string());
        let vote = st.vote.as_ref().map_or("none".to_string(), |l| l.to_string());
        let _ = writeln!(
            out,
            "{id}: {} term={} vote={vote} leader={leader} commit={} applied={} log={}..={}{}",
            st.role,
            st.term,
            st.commit,
            st.applied,
            st.first_index,
            st.last_index,
            if st.quiesced { " quiesced" } else { "" }
        );
        let _ = writeln!(out, "  config {}", membership(&st.membership));
        if st.role == Role::Leader {
            for (peer, p) in &st.progress {
                let state = match p.state {
                    ProgressState::Probe => "probe".to_string(),
                    ProgressState::Replicate => "replicate".to_string(),
                    ProgressState::Snapshot { pending } => format!("snapshot pending={pending}"),
                };
                let _ = writeln!(
                    out,
                    "  progress {peer}: match={} next={} {state}",
                    p.match_index, p.next_index
                );
            }
        }
        Ok(())
    }

    fn raft_log(&mut self, id: &str, out: &mut String) -> Result<(), String> {
        let store = self.node(id)?.storage();
        let err = |e: raft_core::StorageError| e.to_string();
        let first = store.first_index().map_err(err)?;
        let last = store.last_index().map_err(err)?;
        if first > 1 {
            let _ = writeln!(out, "snapshot {}@t{}", first - 1, store.term(first - 1).map_err(err)?);
        }
        if last < first {
            let _ = writeln!(out, "(empty log)");
        }
        for e in store.entries(first, last + 1, u64::MAX).map_err(err)? {
            let _ = writeln!(out, "{}", entry(&e));
        }
        Ok(())
    }
}
