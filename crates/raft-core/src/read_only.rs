//! Linearizable reads with ReadIndex (dissertation §6.4): the leader records its
//! commit index, proves it is still leader with one round of heartbeats acknowledged
//! by a quorum, and only then releases the read at that index.
//!
//! Every heartbeat broadcast is a numbered *round*; followers echo the number. A read
//! registered after round `r` was sent is confirmed by a quorum acknowledging round
//! `r + 1` or later. The same rounds give the opt-in leader lease (§6.4.1): a quorum
//! acknowledged round `c`, sent at tick `t`, so none of those followers will vote for
//! another leader before `t + election_tick`; the leader serves reads alone until
//! `t + read_lease_ticks`.

use bytes::Bytes;
use tracing::debug;

use crate::error::{Error, Result};
use crate::message::{MessageBody, ReadIndexRequest, ReadIndexResponse};
use crate::raft::Raft;
use crate::read_queue::PendingRead;
use crate::storage::Storage;
use crate::types::{LogIndex, NodeId, Role};

impl<S: Storage> Raft<S> {
    /// A read requested on this node.
    pub(crate) fn read_index(&mut self, context: Bytes) -> Result<()> {
        match self.role {
            Role::Leader => {
                self.leader_read(context, None);
                Ok(())
            }
            _ => match self.leader.clone() {
                Some(leader) => {
                    self.send(leader, self.term, MessageBody::ReadIndex(ReadIndexRequest { context }));
                    Ok(())
                }
                None => Err(Error::NotLeader { leader_hint: None }),
            },
        }
    }

    pub(crate) fn leader_read(&mut self, context: Bytes, from: Option<NodeId>) {
        if !self.committed_in_current_term() {
            self.reads.waiting_commit.push((context, from));
            return;
        }
        let index = self.log.committed;
        let alone = self.tracker.membership.all_voters().len() == 1 && self.promotable();
        if alone || self.lease_valid() {
            // A single voter is its own quorum; a valid lease needs no round trip.
            self.release_read(context, from, index);
            return;
        }
        // Wait for a round sent from now on.
        let round = self.reads.round + 1;
        self.reads.round_pending = true;
        self.reads.queue.push_back(PendingRead {
            context,
            from,
            index,
            round,
        });
    }

    /// The opt-in lease: a quorum acknowledged a round sent less than
    /// `read_lease_ticks` ago, and no leadership transfer may have cut it short.
    fn lease_valid(&self) -> bool {
        let Some(lease) = self.cfg.read_lease_ticks else {
            return false;
        };
        let Some(leader) = &self.leader_state else {
            return false;
        };
        if leader.timeout_now_sent || leader.lead_transferee.is_some() {
            return false;
        }
        let confirmed = self.tracker.confirmed_read_round(&leader.progress);
        self.reads
            .sent_tick(confirmed)
            .is_some_and(|sent| self.ticks < sent.saturating_add(lease))
    }

    /// The leader starts a heartbeat round; returns its number (`None` elsewhere).
    pub(crate) fn start_round(&mut self) -> Option<u64> {
        let leader = self.leader_state.as_mut()?;
        let keep = 4 * self.cfg.election_tick as usize + 4;
        let round = self.reads.next_round(self.ticks, keep);
        if let Some(p) = leader.progress.get_mut(&self.id) {
            p.read_round = round;
        }
        Some(round)
    }

    /// Releases every queued read whose round a quorum has acknowledged.
    pub(crate) fn release_confirmed_reads(&mut self) {
        let Some(leader) = &self.leader_state else {
            return;
        };
        let confirmed = self.tracker.confirmed_read_round(&leader.progress);
        while self.reads.queue.front().is_some_and(|r| r.round <= confirmed) {
            if let Some(r) = self.reads.queue.pop_front() {
                self.release_read(r.context, r.from, r.index);
            }
        }
    }

    fn release_read(&mut self, context: Bytes, from: Option<NodeId>, index: LogIndex) {
        match from {
            None => self.reads.push_ready(context, index),
            Some(to) => {
                debug!(id = %self.id, %to, index, "answering forwarded read");
                self.send(
                    to,
                    self.term,
                    MessageBody::ReadIndexResponse(ReadIndexResponse { context, index }),
                );
            }
        }
    }

    /// The leader's first commit in its term: reads that waited for it can proceed.
    pub(crate) fn on_first_commit_of_term(&mut self) {
        for (context, from) in std::mem::take(&mut self.reads.waiting_commit) {
            self.leader_read(context, from);
        }
    }
}
