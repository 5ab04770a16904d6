//! Snapshots (§7): the application's compaction, InstallSnapshot in resumable chunks
//! from leader to lagging follower, and the driver's reports of failed sends.

use tracing::{debug, info, warn};

use crate::entry::{Snapshot, SnapshotMeta};
use crate::error::{Error, Result};
use crate::incoming_snapshot::IncomingSnapshot;
use crate::message::{MessageBody, SnapshotChunk, SnapshotResponse};
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::tracker::Tracker;
use crate::types::{LogIndex, NodeId};

impl<S: Storage> Raft<S> {
    /// The application snapshotted its state machine at `index` (which it applied):
    /// returns the snapshot with its metadata for the driver to persist, after which
    /// the log up to `index` is compacted away.
    pub(crate) fn create_snapshot(&mut self, index: LogIndex, data: bytes::Bytes) -> Result<Snapshot> {
        let snapshot_index = self.log.first_index() - 1;
        if index <= snapshot_index {
            return Err(Error::SnapshotOutOfDate { index, snapshot_index });
        }
        if index > self.log.applied {
            return Err(Error::SnapshotNotApplied {
                index,
                applied: self.log.applied,
            });
        }
        let term = self
            .log
            .term(index)
            .ok_or(Error::SnapshotOutOfDate { index, snapshot_index })?;
        let membership = self.configs.at(index).clone();
        if membership.all_voters().is_empty() {
            return Err(Error::SnapshotMembershipUnknown { index });
        }
        self.configs.compact_to(index);
        info!(id = %self.id, index, term, "snapshot created; log compacted behind it");
        Ok(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                membership,
            },
            data,
        })
    }

    /// The follower needs entries that were compacted: start sending the snapshot.
    pub(crate) fn send_snapshot(&mut self, to: &NodeId) -> bool {
        let stored_index = self.log.first_index() - 1;
        let Some(leader) = self.leader_state.as_mut() else {
            return false;
        };
        if leader.snapshot_cache.as_ref().map(|s| s.meta.index) != Some(stored_index) {
            match self.log.store.snapshot_info() {
                Ok(s) => leader.snapshot_cache = Some(s),
                Err(e) => {
                    warn!(id = %self.id, %to, %e, "snapshot unavailable; will retry");
                    return false;
                }
            }
        }
        let Some(index) = leader.snapshot_cache.as_ref().map(|s| s.meta.index) else {
            return false;
        };
        info!(id = %self.id, %to, index, "sending snapshot");
        if let Some(p) = leader.progress.get_mut(to) {
            p.become_snapshot(index);
        }
        self.send_snapshot_chunk(to)
    }

    /// Sends the chunk that starts where the follower stopped, read from storage.
    fn send_snapshot_chunk(&mut self, to: &NodeId) -> bool {
        let Some(leader) = self.leader_state.as_mut() else {
            return false;
        };
        let Some(info) = &leader.snapshot_cache else {
            return false;
        };
        let Some(p) = leader.progress.get_mut(to) else {
            return false;
        };
        if p.state
            != (ProgressState::Snapshot {
                pending: info.meta.index,
            })
        {
            return false;
        }
        p.snapshot_ticks = 0;
        let offset = p.snapshot_offset.min(info.len);
        let data = match self
            .log
            .store
            .snapshot_chunk(info.meta.index, offset, self.cfg.snapshot_chunk_bytes.max(1))
        {
            Ok(data) => data,
            Err(e) => {
                // Replaced meanwhile, or unreadable: start over by probing.
                warn!(id = %self.id, %to, index = info.meta.index, %e, "cannot read a snapshot chunk; probing again");
                p.become_probe();
                leader.snapshot_cache = None;
                return false;
            }
        };
        let end = offset.saturating_add(data.len() as u64).min(info.len);
        let chunk = SnapshotChunk {
            meta: info.meta.clone(),
            offset,
            data,
            done: end == info.len,
            total: info.len,
            crc: info.crc,
        };
        self.send(to.clone(), self.term, MessageBody::InstallSnapshot(chunk));
        true
    }

    /// A lost chunk is resent after two heartbeat-free election timeouts without an
    /// answer; a snapshot that was replaced meanwhile restarts from probing.
    pub(crate) fn retry_stalled_snapshots(&mut self) {
        let limit = 2 * self.cfg.election_tick;
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let cached = leader.snapshot_cache.as_ref().map(|s| s.meta.index);
        let mut resend = Vec::new();
        for (id, p) in leader.progress.iter_mut() {
            if let ProgressState::Snapshot { pending } = p.state {
                p.snapshot_ticks += 1;
                if p.snapshot_ticks >= limit {
                    if Some(pending) == cached {
                        resend.push(id.clone());
                    } else {
                        p.become_probe();
                    }
                }
            }
        }
        for id in resend {
            debug!(id = %self.id, to = %id, "resending a snapshot chunk");
            self.send_snapshot_chunk(&id);
        }
    }

    /// Follower side: check each chunk against the running checksum and collect it
    /// (in memory, or handed to the driver with [`crate::Config::stream_snapshots`]);
    /// install the whole snapshot through Ready once it is complete and verified.
    pub(crate) fn handle_snapshot(&mut self, from: NodeId, chunk: SnapshotChunk) {
        let meta = chunk.meta;
        let index = meta.index;
        let install_stale = self.cfg.bugs.install_stale_snapshot;
        if index <= self.log.committed && !install_stale {
            // Older than what we already have: never go back (and say where we are).
            debug!(id = %self.id, %from, index, committed = self.log.committed, "ignoring an old snapshot");
            self.incoming_snapshot = None;
            let last_index = self.log.committed;
            self.reply_snapshot(from, index, 0, true, last_index);
            return;
        }
        let same = self
            .incoming_snapshot
            .as_ref()
            .filter(|s| s.meta == meta && s.total == chunk.total && s.crc == chunk.crc);
        if same.is_some_and(|s| s.verifying) {
            // The driver is checking the complete snapshot; its verdict answers.
            return;
        }
        let received = same.map(|s| s.received);
        if chunk.offset == 0 {
            self.incoming_snapshot = Some(IncomingSnapshot {
                meta: meta.clone(),
                from: from.clone(),
                total: chunk.total,
                crc: chunk.crc,
                received: 0,
                hasher: crc32fast::Hasher::new(),
                data: (!self.cfg.stream_snapshots).then(|| bytes::BytesMut::with_capacity(chunk.data.len())),
                verifying: false,
            });
        } else if received != Some(chunk.offset) {
            // Out of order, or from a snapshot we are not assembling: tell the leader
            // where to resume.
            self.reply_snapshot(from, index, received.unwrap_or(0), false, 0);
            return;
        }
        let Some(incoming) = self.incoming_snapshot.as_mut() else {
            return;
        };
        incoming.hasher.update(&chunk.data);
        // Bounded by `total` at the step boundary.
        incoming.received = incoming.received.saturating_add(chunk.data.len() as u64);
        let received = incoming.received;
        let streaming = incoming.data.is_none();
        match incoming.data.as_mut() {
            Some(data) => data.extend_from_slice(&chunk.data),
            None => self.snapshot_chunks_out.push(SnapshotChunk {
                meta: meta.clone(),
                offset: chunk.offset,
                data: chunk.data,
                done: chunk.done,
                total: chunk.total,
                crc: chunk.crc,
            }),
        }
        if !chunk.done {
            self.reply_snapshot(from, index, received, false, 0);
            return;
        }
        let Some(mut incoming) = self.incoming_snapshot.take() else {
            return;
        };
        let crc = std::mem::take(&mut incoming.hasher).finalize();
        if crc != incoming.crc {
            // Corrupted on the way: nothing was installed; fetch it again from the start.
            warn!(id = %self.id, %from, index, expected = incoming.crc, got = crc, "snapshot data fails its checksum; asking for it again");
            self.reply_snapshot(from, index, 0, false, 0);
            return;
        }
        if streaming {
            // The driver staged the chunks; it tells whether the state machine
            // accepts the snapshot ([`crate::RawNode::snapshot_received`]).
            incoming.verifying = true;
            self.incoming_snapshot = Some(incoming);
            return;
        }
        let data = incoming.data.take().unwrap_or_default().freeze();
        self.install_snapshot(from, Snapshot { meta, data });
    }

    /// Streaming driver's verdict on a complete, checksummed snapshot it staged.
    pub(crate) fn snapshot_received(&mut self, index: LogIndex, accepted: bool) {
        let Some(incoming) = self.incoming_snapshot.take_if(|s| s.verifying && s.meta.index == index) else {
            return;
        };
        let IncomingSnapshot { meta, from, .. } = incoming;
        if !accepted {
            warn!(id = %self.id, %from, index, "the state machine rejected a snapshot; asking for it again");
            self.reply_snapshot(from, index, 0, false, 0);
        } else if index <= self.log.committed {
            let last_index = self.log.committed;
            self.reply_snapshot(from, index, 0, true, last_index);
        } else {
            self.install_snapshot(
                from,
                Snapshot {
                    meta,
                    data: bytes::Bytes::new(),
                },
            );
        }
    }

    /// A complete, verified snapshot replaces the log (or commits it, if the log
    /// already holds its last entry).
    fn install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let install_stale = self.cfg.bugs.install_stale_snapshot;
        let meta = snapshot.meta.clone();
        let index = meta.index;
        let received = snapshot.data.len();
        if self.log.match_term(index, meta.term) && !install_stale {
            // Our log already holds the snapshot's last entry: keep the log, commit.
            self.log.commit_to(index);
        } else {
            info!(id = %self.id, %from, index, term = meta.term, bytes = received, "installing snapshot");
            self.configs = crate::membership::ConfigHistory::new(index, meta.membership.clone());
            self.tracker = Tracker::new(meta.membership);
            self.log.restore(snapshot);
        }
        self.reply_snapshot(from, index, received as u64, true, index);
    }

    fn reply_snapshot(&mut self, to: NodeId, index: LogIndex, received: u64, done: bool, last_index: LogIndex) {
        let body = MessageBody::InstallSnapshotResponse(SnapshotResponse {
            index,
            last_index,
            received,
            done,
        });
        if done {
            // Acknowledging an installed snapshot promises it is durable.
            self.send_after_persist(to, body);
        } else {
            self.send(to, self.term, body);
        }
    }

    /// Leader side: the follower reports progress on a snapshot.
    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, s: SnapshotResponse) {
        let last = self.log.last_index();
        let Some(p) = self.progress_mut(&from) else {
            return;
        };
        if s.done {
            if s.last_index > last {
                return;
            }
            p.maybe_update(s.last_index);
            if let ProgressState::Snapshot { .. } = p.state {
                p.become_probe();
            }
            self.send_append(&from, true);
        } else if p.state == (ProgressState::Snapshot { pending: s.index }) {
            p.snapshot_offset = s.received;
            self.send_snapshot_chunk(&from);
        }
    }

    /// The driver could not deliver a snapshot (`ok == false`) or delivered it.
    pub(crate) fn report_snapshot(&mut self, to: &NodeId, ok: bool) {
        if let Some(p) = self.progress_mut(to) {
            if let ProgressState::Snapshot { .. } = p.state {
                if !ok {
                    // Start over by probing; the next send fetches the latest snapshot.
                    p.become_probe();
                }
            }
        }
    }

    /// The driver could not reach `to`: stop streaming optimistically to it.
    pub(crate) fn report_unreachable(&mut self, to: &NodeId) {
        if let Some(p) = self.progress_mut(to) {
            if p.state == ProgressState::Replicate {
                p.become_probe();
            }
        }
    }
}
