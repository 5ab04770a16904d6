//! The state a node holds only while it leads. `Raft::become_leader` makes it and
//! every change of role drops it, so no other role can see a leader's leftovers, and a
//! rule that is for leaders only asks for it (`let Some(leader) = ... else`) instead
//! of checking the role.

use crate::progress::{Progress, ProgressMap, Window};
use crate::storage::SnapshotInfo;
use crate::types::{LogIndex, Membership, NodeId};
use crate::uncommitted::Uncommitted;

/// What a leader keeps during its term, and nobody else.
#[derive(Debug)]
pub(crate) struct LeaderState {
    /// Replication progress per member, the leader included (see [`ProgressMap`]).
    pub(crate) progress: ProgressMap,
    /// Ticks since the last heartbeat broadcast; at `Config::heartbeat_tick` the next
    /// one goes out.
    pub(crate) heartbeat_elapsed: u64,
    /// The voter leadership is being handed to: proposals are refused until it takes
    /// over or an election timeout passes.
    pub(crate) lead_transferee: Option<NodeId>,
    /// New entries were appended: broadcast them at the next Ready, so that all
    /// proposals between two Readys travel in one message per follower.
    pub(crate) pending_bcast: bool,
    /// The snapshot being sent to followers that lag behind the log (its info as the
    /// storage reported it, read again once the storage holds a newer one).
    pub(crate) snapshot_cache: Option<SnapshotInfo>,
    /// TimeoutNow went out in this term: another node may have been elected without
    /// waiting for an election timeout, so the lease can no longer be trusted.
    pub(crate) timeout_now_sent: bool,
    /// The proposals appended in this term and not committed yet.
    pub(crate) uncommitted: Uncommitted,
}

impl LeaderState {
    /// A new leader's state: every member of `membership` is probed from
    /// `next_index`, the leader itself replicates and matches up to `persisted`.
    pub(crate) fn new(
        me: &NodeId,
        membership: &Membership,
        next_index: LogIndex,
        persisted: LogIndex,
        window: Window,
    ) -> Self {
        let mut progress: ProgressMap = membership
            .members()
            .into_iter()
            .map(|id| (id, Progress::new(next_index, window)))
            .collect();
        if let Some(p) = progress.get_mut(me) {
            p.match_index = persisted;
            p.become_replicate();
            p.recent_active = true;
        }
        LeaderState {
            progress,
            heartbeat_elapsed: 0,
            lead_transferee: None,
            pending_bcast: false,
            snapshot_cache: None,
            timeout_now_sent: false,
            uncommitted: Uncommitted::default(),
        }
    }

    /// A new configuration took effect: new members get fresh progress from
    /// `next_index`, removed ones lose theirs.
    pub(crate) fn follow_membership(&mut self, membership: &Membership, next_index: LogIndex, window: Window) {
        let members = membership.members();
        self.progress.retain(|id, _| members.contains(id));
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next_index, window));
        }
    }

    /// The members the leader replicates to: all but itself.
    pub(crate) fn peers(&self, me: &NodeId) -> Vec<NodeId> {
        self.progress.keys().filter(|id| *id != me).cloned().collect()
    }
}
