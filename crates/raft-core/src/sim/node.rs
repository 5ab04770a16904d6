//! One simulated machine: a `RawNode` over a `MemStorage` "disk" while it is up, only
//! the disk while it is down. Its state machine is volatile: after a restart it is
//! rebuilt by applying the log again from the snapshot index.

use crate::config::Config;
use crate::mem_storage::MemStorage;
use crate::raw_node::{RawNode, Ready};
use crate::read_only::ReadState;
use crate::sim::shadow::decode_snapshot;
use crate::storage::Storage;
use crate::types::{LogIndex, NodeId};

/// Where a crash interrupts a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Between two inputs: everything handed out was persisted.
    Now,
    /// During the next Ready that asks for a write: after its `messages` left, before
    /// anything was persisted (the write and `persisted_messages` are lost).
    NextWrite,
    /// Like `NextWrite`, at the next Ready that changes the persisted term or vote.
    NextVote,
    /// A torn write: during the next Ready with entries, after its `messages` left
    /// and its snapshot and only some of its entries were persisted (never its hard
    /// state, nor `persisted_messages`).
    TornWrite,
}

/// Up with a live node, or down with only its disk.
pub(crate) enum Life {
    Up(Box<RawNode<MemStorage>>),
    Down { disk: MemStorage, restart_at: u64 },
}

pub(crate) struct SimNode {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) life: Life,
    /// A paused node neither ticks nor receives (its messages wait) until this step.
    pub(crate) paused_until: u64,
    /// An armed crash that waits for its Ready, and the downtime after it.
    pub(crate) crash_at: Option<(CrashPoint, u64)>,
    /// The state machine: the last applied index and the digest of everything applied.
    pub(crate) applied: LogIndex,
    pub(crate) digest: u64,
    /// Read results waiting for the state machine to reach their index.
    pub(crate) reads: Vec<ReadState>,
    pub(crate) incarnation: u32,
}

impl SimNode {
    pub(crate) fn new(config: Config, disk: MemStorage) -> crate::Result<Self> {
        let raw = RawNode::new(config.clone(), disk)?;
        Ok(SimNode {
            id: config.id.clone(),
            config,
            life: Life::Up(Box::new(raw)),
            paused_until: 0,
            crash_at: None,
            applied: 0,
            digest: 0,
            reads: Vec::new(),
            incarnation: 0,
        })
    }

    pub(crate) fn raw(&self) -> Option<&RawNode<MemStorage>> {
        match &self.life {
            Life::Up(raw) => Some(raw),
            Life::Down { .. } => None,
        }
    }

    pub(crate) fn raw_mut(&mut self) -> Option<&mut RawNode<MemStorage>> {
        match &mut self.life {
            Life::Up(raw) => Some(raw),
            Life::Down { .. } => None,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        matches!(self.life, Life::Up(_))
    }

    /// Up and not paused: it ticks and takes messages.
    pub(crate) fn is_running(&self, now: u64) -> bool {
        self.is_up() && self.paused_until <= now
    }

    /// Whether the armed crash point is reached by `rd`.
    pub(crate) fn crashes_during(&self, rd: &Ready) -> bool {
        let Some((point, _)) = self.crash_at else { return false };
        let Some(raw) = self.raw() else { return false };
        match point {
            CrashPoint::Now => false,
            CrashPoint::NextWrite => rd.hard_state.is_some() || !rd.entries.is_empty() || rd.snapshot.is_some(),
            CrashPoint::TornWrite => !rd.entries.is_empty(),
            CrashPoint::NextVote => rd.hard_state.as_ref().is_some_and(|hs| {
                let old = raw.storage().hard_state();
                hs.term != old.term || hs.vote != old.vote
            }),
        }
    }

    /// Crashes the node: only its disk survives.
    pub(crate) fn crash(&mut self, restart_at: u64) {
        let life = std::mem::replace(
            &mut self.life,
            Life::Down {
                disk: MemStorage::default(),
                restart_at,
            },
        );
        let disk = match life {
            Life::Up(raw) => raw.into_storage(),
            Life::Down { disk, .. } => disk,
        };
        self.life = Life::Down { disk, restart_at };
        self.crash_at = None;
        self.reads.clear();
        self.applied = 0;
        self.digest = 0;
    }

    /// Restarts the node from its disk with a fresh timeout seed.
    pub(crate) fn restart(&mut self, seed: u64) -> crate::Result<()> {
        let life = std::mem::replace(
            &mut self.life,
            Life::Down {
                disk: MemStorage::default(),
                restart_at: 0,
            },
        );
        let disk = match life {
            Life::Down { disk, .. } => disk,
            up => {
                self.life = up;
                return Ok(());
            }
        };
        self.config.seed = seed;
        // The state machine restarts from the snapshot, then replays the log.
        let (snap_index, snap_digest) = match disk.snapshot() {
            Ok(s) if s.meta.index > 0 => (s.meta.index, decode_snapshot(&s.data).map_or(0, |(_, d)| d)),
            _ => (0, 0),
        };
        let raw = RawNode::new(self.config.clone(), disk)?;
        self.applied = raw.status().applied;
        self.digest = if self.applied == snap_index { snap_digest } else { 0 };
        self.life = Life::Up(Box::new(raw));
        self.incarnation += 1;
        Ok(())
    }

    /// Whether the node is down and due to restart at `now`.
    pub(crate) fn restart_due(&self, now: u64) -> bool {
        matches!(self.life, Life::Down { restart_at, .. } if restart_at <= now)
    }

    pub(crate) fn describe(&self, now: u64) -> String {
        match &self.life {
            Life::Up(raw) => {
                let paused = if self.paused_until > now { " (paused)" } else { "" };
                format!("{} inc={}{paused}", raw.describe(), self.incarnation)
            }
            Life::Down { disk, restart_at } => {
                let hs = disk.hard_state();
                format!(
                    "{} DOWN until {restart_at}: disk t{} vote={:?} commit={} inc={}",
                    self.id,
                    hs.term,
                    hs.vote.as_ref().map(|v| v.as_str()),
                    hs.commit,
                    self.incarnation
                )
            }
        }
    }
}
