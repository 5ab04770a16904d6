//! Linearizable reads on the node task: each waits for its ReadIndex (asked again
//! after a leader change or when overdue), then goes to the apply worker, which
//! answers it once the state machine has applied up to that index.

use bytes::Bytes;
use raft_core::ReadState;
use raft_storage::LogStore;
use tracing::debug;

use super::{NodeTask, Reply};
use crate::apply::ApplyJob;
use crate::state_machine::StateMachine;
use crate::transport::Transport;

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// A linearizable read: it waits in `reads` for its ReadIndex.
    pub(super) fn read(&mut self, query: SM::Query, reply: Reply<SM::QueryResponse>) {
        let id = self.next_read;
        self.next_read += 1;
        match self.ask_read_index(id) {
            Ok(asked) => {
                self.reads.insert(id, (query, reply, asked));
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Asks the core for the ReadIndex of read `id`: the tick it was asked at, or
    /// `None` when no leader is known (it is asked again once one is elected).
    fn ask_read_index(&mut self, id: u64) -> Result<Option<u64>, raft_core::Error> {
        match self.raw.read_index(Bytes::copy_from_slice(&id.to_be_bytes())) {
            Ok(()) => Ok(Some(self.ticks)),
            Err(raft_core::Error::NotLeader { leader_hint: None }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Requests whose callers gave up (timed out) are forgotten.
    pub(super) fn forget_abandoned(&mut self) {
        self.reads.retain(|_, (_, r, _)| !r.is_closed());
    }

    /// Pending reads are asked again after a leader or term change (the old leader
    /// will never answer them) and when an answer is overdue (a lost message).
    pub(super) fn retry_reads(&mut self) {
        let overdue_after = self.config.election_ticks();
        let now = self.ticks;
        let stale = std::mem::take(&mut self.reads_stale);
        let due: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, (_, _, asked))| match asked {
                None => true,
                Some(t) => stale || now.saturating_sub(*t) >= overdue_after,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let asked = match self.ask_read_index(id) {
                Ok(asked) => asked,
                Err(e) => {
                    if let Some((_, reply, _)) = self.reads.remove(&id) {
                        let _ = reply.send(Err(e.into()));
                    }
                    continue;
                }
            };
            if let Some(r) = self.reads.get_mut(&id) {
                r.2 = asked;
            }
        }
    }

    pub(super) fn on_read_state(&mut self, rs: ReadState) {
        let Ok(bytes) = <[u8; 8]>::try_from(&rs.context[..]) else {
            debug!(id = %self.id, "read state with a foreign context ignored");
            return;
        };
        if let Some((query, reply, _)) = self.reads.remove(&u64::from_be_bytes(bytes)) {
            self.send_to_applier(ApplyJob::Read(rs.index, query, reply));
        }
    }
}
