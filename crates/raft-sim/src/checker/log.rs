//! Election Safety, Leader Append-Only, Log Matching and Leader Completeness: what
//! each Ready says about roles, logs and commit indexes.

use raft_core::{Entry, LogIndex, PersistJob, Ready, Role, Term};

use super::{Checker, Committed, Seen};
use crate::shadow::{digest_step, At, Payload, Slot};
use crate::violation::{Property, Violation};

impl Checker {
    /// Node `i` handed out `rd`; nothing of it is persisted yet. Checks the role
    /// change, the snapshot, and that a leader's new entries only append; then takes
    /// its snapshot, entries (Log Matching) and commit index into the node's log as
    /// the node now holds it (in memory, written later: see [`Checker::on_persisted`]).
    pub fn on_ready(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        self.check_ready(i, rd)?;
        if let Some(s) = &rd.snapshot {
            self.nodes[i].log.install(s.meta.index, s.meta.term);
        }
        if let Some(first) = rd.entries.first() {
            self.nodes[i].log.truncate_from(first.index);
            for e in &rd.entries {
                self.store(i, e)?;
            }
        }
        if let Some(hs) = &rd.hard_state {
            self.on_commit(i, hs.commit)?;
        }
        Ok(())
    }

    fn check_ready(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let was_leader = self.nodes[i].is_leader();
        let old_term = self.nodes[i].term;
        if let Some(ss) = &rd.soft_state {
            if ss.term < old_term {
                return self.fail(
                    Property::Contract,
                    format!("node {i}'s term went back from {old_term} to {}", ss.term),
                );
            }
            self.nodes[i].role = ss.role;
            self.nodes[i].term = ss.term;
            if ss.role == Role::Leader && !(was_leader && ss.term == old_term) {
                self.on_elected(i, ss.term)?;
            }
        }
        if let Some(s) = &rd.snapshot {
            self.check_snapshot(i, s, "received")?;
        }
        let Some(first) = rd.entries.first() else { return Ok(()) };
        let view = &self.nodes[i];
        for (k, e) in rd.entries.iter().enumerate() {
            if e.index != first.index + k as u64 || e.term > view.term {
                return self.fail(
                    Property::Contract,
                    format!("node {i}: malformed Ready entries at {k}: {e}"),
                );
            }
        }
        let (base, last) = match &rd.snapshot {
            Some(s) if s.meta.index >= view.log.snapshot.0 => {
                let keeps = view.log.term(s.meta.index) == Some(s.meta.term);
                let last = if keeps {
                    view.log.last_index().max(s.meta.index)
                } else {
                    s.meta.index
                };
                (s.meta.index, last)
            }
            _ => (view.log.snapshot.0, view.log.last_index()),
        };
        if first.index <= base || first.index > last + 1 {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i}: Ready entries start at {} over a log of ({base}, {last}]",
                    first.index
                ),
            );
        }
        if was_leader && view.is_leader() && view.term == old_term && first.index <= view.log.last_index() {
            return self.fail(
                Property::LeaderAppendOnly,
                format!(
                    "leader {i} of term {old_term} overwrote its log from index {} (its log ended at {})",
                    first.index,
                    view.log.last_index()
                ),
            );
        }
        Ok(())
    }

    /// Node `i` became leader of `term`.
    fn on_elected(&mut self, i: usize, term: Term) -> Result<(), Violation> {
        if let Some(&other) = self.leaders.get(&term) {
            if other != i {
                return self.fail(
                    Property::ElectionSafety,
                    format!("nodes {other} and {i} were both leader of term {term}"),
                );
            }
        }
        self.leaders.insert(term, i);
        // §5.4: the new leader must hold every entry committed in an earlier term.
        let view = &self.nodes[i];
        for (k, c) in self.committed.iter().enumerate() {
            let index = k as LogIndex + 1;
            if c.in_term < term && !view.log.holds(index, c.slot) {
                return self.fail(
                    Property::LeaderCompleteness,
                    format!(
                        "node {i} became leader of term {term} without entry {index} ({:?} of term {}) \
                         committed in term {} by node {}; it has {:?}",
                        c.slot.1,
                        c.slot.0,
                        c.in_term,
                        c.by,
                        view.log.at(index)
                    ),
                );
            }
        }
        Ok(())
    }
    /// Node `i`'s disk completed `job`: its snapshot and entries are now on the disk
    /// (what a restart finds, see [`Checker::on_restart`]).
    pub fn on_persisted(&mut self, i: usize, job: &PersistJob) {
        let disk = &mut self.nodes[i].disk;
        if let Some(s) = &job.snapshot {
            disk.install(s.meta.index, s.meta.term);
        }
        if let Some(first) = job.entries.first() {
            disk.truncate_from(first.index);
            for e in &job.entries {
                disk.push((e.term, Payload::of(e)));
            }
        }
    }

    /// Appends one entry to node `i`'s shadow log, checking Log Matching.
    fn store(&mut self, i: usize, e: &Entry) -> Result<(), Violation> {
        let log = &mut self.nodes[i].log;
        let prev_term = log.last_term();
        let payload = Payload::of(e);
        log.push((e.term, payload));
        let index = e.index as usize;
        if self.seen.len() <= index {
            self.seen.resize_with(index + 1, Vec::new);
        }
        match self.seen[index].iter().find(|s| s.term == e.term) {
            None => self.seen[index].push(Seen {
                term: e.term,
                payload,
                prev_term,
            }),
            Some(s) if s.payload == payload && s.prev_term == prev_term => {}
            Some(s) => {
                let s = *s;
                return self.fail(
                    Property::LogMatching,
                    format!(
                        "node {i} stored entry {}/{} = {payload:?} after an entry of term {prev_term}, \
                         but another log has {}/{} = {:?} after an entry of term {}",
                        e.index, e.term, e.index, s.term, s.payload, s.prev_term
                    ),
                );
            }
        }
        Ok(())
    }

    /// Node `i`'s commit index is now `commit`.
    fn on_commit(&mut self, i: usize, commit: LogIndex) -> Result<(), Violation> {
        let view = &self.nodes[i];
        if commit > view.log.last_index() {
            return self.fail(
                Property::Contract,
                format!(
                    "node {i} committed {commit} beyond its log ending at {}",
                    view.log.last_index()
                ),
            );
        }
        if commit < view.commit {
            return self.fail(
                Property::StateMachineSafety,
                format!("node {i}'s commit index went back from {} to {commit}", view.commit),
            );
        }
        let (from, term) = (view.commit + 1, view.term);
        for index in from..=commit {
            let At::Entry(slot) = self.nodes[i].log.at(index) else {
                continue;
            };
            match self.committed_rec(index) {
                Some(c) if c.slot == slot => {}
                Some(c) => {
                    let c = *c;
                    return self.fail(
                        Property::StateMachineSafety,
                        format!(
                            "node {i} committed {index} = {:?} of term {}, but node {} committed {:?} of term {} there",
                            slot.1, slot.0, c.by, c.slot.1, c.slot.0
                        ),
                    );
                }
                None if index == self.commit_index() + 1 => {
                    let digest = digest_step(self.committed.last().map_or(0, |c| c.digest), index, slot);
                    self.committed.push(Committed {
                        slot,
                        in_term: term,
                        by: i,
                        digest,
                    });
                    self.check_later_leaders(index, slot, term)?;
                }
                None => {
                    return self.fail(
                        Property::Contract,
                        format!("node {i} committed {index}, past a gap in what anyone committed"),
                    )
                }
            }
        }
        self.nodes[i].commit = commit;
        Ok(())
    }

    /// An entry committed in `term` must be in the log of every leader of a later term.
    fn check_later_leaders(&self, index: LogIndex, slot: Slot, term: Term) -> Result<(), Violation> {
        for (j, v) in self.nodes.iter().enumerate() {
            if v.is_leader() && v.term > term && !v.log.holds(index, slot) {
                return self.fail(
                    Property::LeaderCompleteness,
                    format!(
                        "entry {index} ({:?} of term {}) was committed in term {term}, but leader {j} of term {} lacks it",
                        slot.1, slot.0, v.term
                    ),
                );
            }
        }
        Ok(())
    }
}
