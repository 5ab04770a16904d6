//! The node task's requests from the handle: proposals batched into one log append,
//! and the rest dispatched to the files that own them.

use bytes::Bytes;
use raft_storage::LogStore;

use super::{NodeTask, Reply};
use crate::apply::ApplyJob;
use crate::error::Error;
use crate::handle::Request;
use crate::metrics::Counters;
use crate::state_machine::StateMachine;
use crate::transport::Transport;

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Handles `first` and every request already queued behind it; proposals among
    /// them go to the log as one batch. Returns false on shutdown.
    pub(super) fn handle_requests(&mut self, first: Request<SM>) -> bool {
        let mut batch: Vec<(Bytes, Reply<SM::Response>)> = Vec::new();
        let mut next = Some(first);
        let mut keep_running = true;
        while let Some(r) = next.take() {
            match r {
                Request::Propose(cmd, reply) => batch.push((cmd, reply)),
                Request::Shutdown => {
                    keep_running = false;
                    break;
                }
                other => self.handle_request(other),
            }
            if batch.len() < self.config.max_batch_size {
                next = self.requests.try_recv().ok();
            }
        }
        self.propose_batch(batch);
        keep_running
    }

    /// Appends the batch's commands as one; each caller waits in `proposals` for its
    /// entry to apply.
    fn propose_batch(&mut self, batch: Vec<(Bytes, Reply<SM::Response>)>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let (cmds, replies): (Vec<Bytes>, Vec<Reply<SM::Response>>) = batch.into_iter().unzip();
        // Kept (cheap clones) in case the batch as a whole is over the uncommitted cap.
        let retry = (n > 1).then(|| cmds.clone());
        match self.raw.propose_batch(cmds) {
            Ok((term, last)) => {
                Counters::add(&self.counters.proposals, n);
                for (i, reply) in replies.into_iter().enumerate() {
                    self.proposals.insert(last + 1 - n + i as u64, (term, reply));
                }
            }
            // Over the uncommitted cap as one batch: take what fits one by one, so the
            // earlier proposals of a large batch are not refused with the later ones.
            Err(raft_core::Error::Backpressure { .. }) if retry.is_some() => {
                for (cmd, reply) in retry.into_iter().flatten().zip(replies) {
                    self.propose_batch(vec![(cmd, reply)]);
                }
            }
            // The same refusal for every proposal of the batch.
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone().into()));
                }
            }
        }
    }

    /// A request other than a proposal or the shutdown.
    fn handle_request(&mut self, r: Request<SM>) {
        match r {
            // Without the worker, the reply is dropped: the caller sees `Stopped`.
            Request::ReadLocal(query, reply) => self.send_to_applier(ApplyJob::ReadLocal(query, reply)),
            Request::Read(query, reply) => self.read(query, reply),
            Request::ChangeMembership(changes, reply) => self.change_membership(&changes, reply),
            Request::TransferLeadership(to, reply) => {
                let _ = reply.send(self.raw.transfer_leader(to).map_err(Error::from));
            }
            Request::Status(reply) => {
                let _ = reply.send(self.raw.status());
            }
            Request::Snapshot(reply) => self.snapshot_now(reply),
            Request::Wake => self.raw.wake(),
            Request::Propose(..) | Request::Shutdown => {}
        }
    }
}
