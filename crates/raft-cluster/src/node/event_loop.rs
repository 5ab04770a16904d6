//! The node task's loop: one `select!` over the ticker, inbound messages, requests,
//! transport reports and the lanes' completions, then the Ready handed out; and its
//! end, which answers every waiting caller.

use raft_core::{Message, Ready, Role};
use raft_storage::LogStore;
use tracing::{error, info, warn};

use super::{NodeTask, Ticker};
use crate::error::Error;
use crate::events::{NodeView, RaftEvent};
use crate::metrics::Counters;
use crate::state_machine::StateMachine;
use crate::transport::{SendReport, Transport};

impl<SM, S, T> NodeTask<SM, S, T>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    /// Runs the node until it is shut down or cannot continue safely.
    pub(super) async fn run(mut self) {
        let mut ticker = self
            .ticker
            .take()
            .unwrap_or_else(|| Ticker::own(self.config.heartbeat_interval));
        loop {
            // A quiesced node has nothing to tick: it sleeps until a message or a
            // request wakes it (the host wakes it when a peer falls silent).
            let quiesced = self.raw.is_quiesced();
            tokio::select! {
                _ = ticker.tick(), if !quiesced => {
                    self.raw.tick();
                    self.ticks += 1;
                    self.forget_abandoned();
                    self.check_disk();
                    self.retry_reads();
                }
                m = self.inbox_rx.recv() => match m {
                    Some(m) => {
                        self.step(m);
                        while let Ok(m) = self.inbox_rx.try_recv() {
                            self.step(m);
                        }
                    }
                    None => break,
                },
                r = self.requests.recv() => match r {
                    Some(r) => {
                        if !self.handle_requests(r) {
                            break;
                        }
                    }
                    None => break,
                },
                Some(report) = self.reports.recv() => match report {
                    SendReport::Unreachable(to) => self.raw.report_unreachable(&to),
                    SendReport::SnapshotFailed(to) => self.raw.report_snapshot(&to, false),
                },
                Some(p) = self.persisted_rx.recv() => {
                    if let Err(e) = self.drain_persisted(p) {
                        error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                        break;
                    }
                }
                Some(r) = self.applied_rx.recv() => {
                    if let Err(e) = self.drain_applied(r) {
                        error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                        break;
                    }
                }
            }
            if self.reads_stale {
                self.retry_reads();
            }
            if let Err(e) = self.process_ready() {
                error!(id = %self.id, error = %e, "stopping the node: cannot continue safely");
                break;
            }
        }
        self.stop().await;
    }

    fn step(&mut self, m: Message) {
        if let Err(e) = self.raw.step(m) {
            crate::warn_limited!(id = %self.id, error = %e, "dropping inbound message");
        }
    }

    pub(super) fn send(&mut self, messages: Vec<Message>) {
        if !messages.is_empty() {
            Counters::add(&self.counters.messages_sent, messages.len() as u64);
            self.outbound.send_all(messages);
        }
    }

    pub(super) fn observe(&mut self, rd: &Ready) {
        let Some(ss) = &rd.soft_state else { return };
        let _ = self.events.send(RaftEvent::StateChanged {
            role: ss.role,
            term: ss.term,
        });
        if ss.role == Role::Leader && self.leader.as_ref() != Some(&self.id) {
            Counters::add(&self.counters.elections_won, 1);
        }
        if ss.leader != self.leader {
            if let Some(l) = &ss.leader {
                info!(id = %self.id, leader = %l, term = ss.term, "leader elected");
                let _ = self.events.send(RaftEvent::LeaderElected {
                    leader: l.clone(),
                    term: ss.term,
                });
            }
            self.leader = ss.leader.clone();
        }
        self.reads_stale = true;
    }

    pub(super) fn publish_view(&mut self) {
        let v = NodeView {
            role: self.raw.role(),
            term: self.raw.term(),
            leader: self.raw.leader().cloned(),
            commit: self.raw.commit_index(),
            applied: self.applied,
            running: true,
            disk_stalled: self.disk_stalled,
            quiesced: self.raw.is_quiesced(),
        };
        self.view.send_if_modified(|old| {
            let changed = *old != v;
            *old = v;
            changed
        });
    }

    async fn stop(mut self) {
        info!(id = %self.id, "node stopping");
        // Let the writes already queued finish (their acknowledgements may still go out).
        while self.writes_in_flight > 0 {
            match tokio::time::timeout(self.config.request_timeout, self.persisted_rx.recv()).await {
                Ok(Some(p)) => {
                    if self.on_persisted(p).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        // Commit-only changes are not written as they happen; write the final commit
        // index now, so a node stopped cleanly recovers its whole state on its own.
        let st = self.raw.status();
        let mut hs = raft_core::HardState {
            term: st.term,
            vote: st.vote,
            commit: st.commit,
        };
        let storage = self.storage.clone();
        let persisted = self.raw.persisted_index();
        let persisted = tokio::task::spawn_blocking(move || {
            let mut store = storage.lock();
            // Never claim a commit beyond what is on disk (a failed persist may have
            // left unstored entries behind).
            hs.commit = hs.commit.min(persisted).min(store.last_index()?);
            store.set_hard_state(&hs)
        })
        .await;
        if !matches!(persisted, Ok(Ok(()))) {
            warn!(id = %self.id, "could not write the final hard state; the commit index will be re-learned");
        }
        for (_, (_, reply)) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for (_, (_, reply, _)) in std::mem::take(&mut self.reads) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for c in std::mem::take(&mut self.conf_changes) {
            let _ = c.reply.send(Err(Error::Stopped));
        }
        self.transport.stop().await;
        self.view.send_modify(|v| v.running = false);
    }
}
