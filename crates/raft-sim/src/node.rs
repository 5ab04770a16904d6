//! One simulated machine: a `RawNode` over a `MemStorage` "disk" while it is up, only
//! the disk while it is down. Its state machine is volatile: after a restart it is
//! rebuilt by applying the log again from the snapshot index.

use std::collections::VecDeque;

use raft_core::{Config, LogIndex, MemStorage, NodeId, PersistJob, RawNode, ReadState, ReadyDriver, Storage, Work};

use crate::shadow::decode_snapshot;

/// Where a crash interrupts a node. Its disk completes writes in order, each some
/// steps after its Ready queued it; a crash loses every write not completed yet (and
/// the acknowledgements that waited for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Between two inputs: the completed writes survive, the outstanding ones are lost.
    Now,
    /// During the next Ready that asks for a write: after its `messages` left, before
    /// its write (or any outstanding one) completed.
    NextWrite,
    /// Like `NextWrite`, at the next Ready that changes the persisted term or vote.
    NextVote,
    /// A torn write: during the next Ready with entries, after its `messages` left,
    /// the writes before it completed, and its snapshot and only some of its entries
    /// reached the disk (never its hard state, nor `persisted_messages`).
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
    /// Carries out the Readys of the current incarnation.
    pub(crate) driver: ReadyDriver,
    /// The disk's queue: writes handed out and not completed, with the step each
    /// completes at (never before the one ahead of it).
    pub(crate) disk_queue: VecDeque<(u64, PersistJob)>,
}

impl SimNode {
    pub(crate) fn new(config: Config, disk: MemStorage) -> raft_core::Result<Self> {
        let driver = Self::driver_for(&disk);
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
            driver,
            disk_queue: VecDeque::new(),
        })
    }

    /// The production driver (term and vote writes only); it finds the node's planted
    /// bugs in the node's `Config::bugs`.
    fn driver_for(disk: &MemStorage) -> ReadyDriver {
        ReadyDriver::new(disk.hard_state())
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

    /// The live node and its driver, if it is up.
    pub(crate) fn raw_and_driver(&mut self) -> Option<(&mut RawNode<MemStorage>, &mut ReadyDriver)> {
        match &mut self.life {
            Life::Up(raw) => Some((raw, &mut self.driver)),
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

    /// Whether the armed crash point is reached by the Ready that gave `work`.
    pub(crate) fn crashes_during(&self, work: &Work) -> bool {
        let Some((point, _)) = self.crash_at else { return false };
        let Some(job) = &work.persist else { return false };
        match point {
            CrashPoint::Now => false,
            CrashPoint::NextWrite => true,
            CrashPoint::TornWrite => !job.entries.is_empty(),
            // The driver writes a hard state only when its term or vote changed.
            CrashPoint::NextVote => job.hard_state.is_some(),
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
        self.disk_queue.clear();
        self.reads.clear();
        self.applied = 0;
        self.digest = 0;
    }

    /// Restarts the node from its disk with a fresh timeout seed.
    pub(crate) fn restart(&mut self, seed: u64) -> raft_core::Result<()> {
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
        self.driver = Self::driver_for(&disk);
        self.disk_queue.clear();
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
