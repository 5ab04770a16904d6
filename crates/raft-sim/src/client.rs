//! Clients: they propose unique commands to whoever they believe leads (following
//! `NotLeader` hints), start ReadIndex reads at the leader or at any node (which
//! forwards them), and now and then ask the leader to hand over leadership.

use std::fmt;

use raft_core::{Error, LogIndex, MembershipChange, NodeId, Term};

use crate::cluster::SimCluster;
use crate::violation::Violation;
use crate::RngExt;

/// How busy the clients are, per step, in parts per thousand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientRates {
    /// Chance to propose a batch of commands.
    pub propose_per_mille: u32,
    /// The largest batch.
    pub max_batch: u64,
    /// Chance to start a read.
    pub read_per_mille: u32,
    /// Chance to ask the leader to transfer leadership.
    pub transfer_per_mille: u32,
    /// Chance to ask the leader for a membership change (add or promote a learner,
    /// add or remove a voter; never below three voters).
    pub membership_per_mille: u32,
}

impl fmt::Display for ClientRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "propose={}‰ x<={} read={}‰ transfer={}‰ membership={}‰",
            self.propose_per_mille,
            self.max_batch,
            self.read_per_mille,
            self.transfer_per_mille,
            self.membership_per_mille
        )
    }
}

/// A command the leader accepted: it was applied as proposed if the entry applied at
/// `index` has `term` (and carries `id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The command's id (its payload's 8 bytes).
    pub id: u64,
    /// The leader's term.
    pub term: Term,
    /// The index it was appended at.
    pub index: LogIndex,
}

/// The clients' state: the next ids, where they think the leader is, what was accepted.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    next_command: u64,
    next_read: u64,
    leader_guess: usize,
    pub(crate) accepted: Vec<Accepted>,
}

impl Clients {
    /// Proposes a batch of fresh commands at the believed leader. Returns the accepted
    /// commands (empty if refused).
    pub(crate) fn propose(&mut self, c: &mut SimCluster, batch: u64) -> Result<Vec<Accepted>, Violation> {
        let ids: Vec<u64> = (0..batch.max(1))
            .map(|_| {
                self.next_command += 1;
                self.next_command
            })
            .collect();
        let at = self.leader_guess;
        match c.propose(at, &ids)? {
            Ok((term, last)) => {
                let first = last + 1 - ids.len() as u64;
                let acc: Vec<Accepted> = ids
                    .iter()
                    .enumerate()
                    .map(|(k, &id)| Accepted {
                        id,
                        term,
                        index: first + k as u64,
                    })
                    .collect();
                self.accepted.extend_from_slice(&acc);
                Ok(acc)
            }
            Err(e) => {
                self.follow_hint(c, &e);
                Ok(Vec::new())
            }
        }
    }

    fn follow_hint(&mut self, c: &mut SimCluster, e: &Error) {
        let hinted = match e {
            Error::NotLeader { leader_hint: Some(id) } => c.index_of(id),
            _ => None,
        };
        self.leader_guess = match hinted {
            Some(i) if i != self.leader_guess => i,
            _ => c.random_node(),
        };
    }

    /// Makes the clients believe node `i` leads.
    pub(crate) fn point_at(&mut self, i: usize) {
        self.leader_guess = i;
    }

    /// Starts a read at the believed leader, or at a random node.
    pub(crate) fn read(&mut self, c: &mut SimCluster) -> Result<(), Violation> {
        self.next_read += 1;
        let at = if c.rng().chance(700) {
            self.leader_guess
        } else {
            c.random_node()
        };
        if !c.read(at, self.next_read)? && at == self.leader_guess {
            self.leader_guess = c.random_node();
        }
        Ok(())
    }

    /// Asks the leader (if any) to hand over to a random other node.
    pub(crate) fn transfer(&mut self, c: &mut SimCluster) -> Result<(), Violation> {
        if let Some(leader) = c.leader() {
            let to = c.random_node();
            if to != leader {
                c.transfer(leader, to)?;
            }
        }
        Ok(())
    }

    /// Asks the leader (if any) to change the membership of a random node.
    /// A third of the requests change two nodes at once (say, replace a voter), so
    /// that the old and new majorities need not overlap without the joint phase.
    pub(crate) fn change_membership(&mut self, c: &mut SimCluster) -> Result<(), Violation> {
        let Some(leader) = c.leader() else { return Ok(()) };
        let Some(m) = c.membership_of(leader) else {
            return Ok(());
        };
        let count = if c.rng().chance(333) { 2 } else { 1 };
        let mut changes = Vec::new();
        let mut voters = m.voters.len();
        for _ in 0..count {
            let i = c.random_node();
            let id = c.id(i).clone();
            if changes.iter().any(|ch| target(ch) == &id) {
                continue;
            }
            let coin = c.rng().chance(500);
            let change = if m.voters.contains(&id) {
                if voters <= 3 {
                    continue;
                }
                voters -= 1;
                MembershipChange::Remove(id)
            } else if m.learners.contains(&id) {
                if coin {
                    MembershipChange::PromoteLearner(id)
                } else {
                    MembershipChange::Remove(id)
                }
            } else if coin {
                MembershipChange::AddLearner(id)
            } else {
                MembershipChange::AddVoter(id)
            };
            changes.push(change);
        }
        if !changes.is_empty() {
            c.change_membership(leader, &changes)?;
        }
        Ok(())
    }

    /// One step of client activity.
    pub(crate) fn step(&mut self, c: &mut SimCluster, rates: &ClientRates) -> Result<(), Violation> {
        if c.rng().chance(rates.propose_per_mille) {
            let batch = c.rng().range(1, rates.max_batch + 1);
            self.propose(c, batch)?;
        }
        if c.rng().chance(rates.read_per_mille) {
            self.read(c)?;
        }
        if c.rng().chance(rates.transfer_per_mille) {
            self.transfer(c)?;
        }
        if c.rng().chance(rates.membership_per_mille) {
            self.change_membership(c)?;
        }
        Ok(())
    }
}

/// The node a membership change is about.
fn target(change: &MembershipChange) -> &NodeId {
    match change {
        MembershipChange::AddVoter(id)
        | MembershipChange::AddLearner(id)
        | MembershipChange::PromoteLearner(id)
        | MembershipChange::Remove(id) => id,
    }
}
