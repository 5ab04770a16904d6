//! How a [`crate::FileStorage`] is tuned.

use raft_core::Membership;

use crate::error::Error;
use crate::format::MAX_RECORD_LEN;

/// Whether writes wait for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every write is followed by `fdatasync` (and the directory by `fsync` when files
    /// are created, renamed or removed) before it is acknowledged. The default, and the
    /// only setting under which Raft is safe.
    #[default]
    Fsync,
    /// Skips every `fsync`. A power loss (not a process crash) can then lose
    /// acknowledged entries and votes, which breaks Raft's safety. For tests and
    /// benchmarks of everything but the disk, never for data you want to keep.
    UnsafeNoFsyncForTests,
}

/// Options of [`crate::FileStorage::open`]. Build with the setters:
///
/// ```
/// use raft_storage::{Durability, Options};
/// let options = Options::default().segment_size(8 << 20).cache_bytes(4 << 20);
/// assert_eq!(options.get_durability(), Durability::Fsync);
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    segment_size: u64,
    cache_bytes: u64,
    durability: Durability,
    initial_membership: Membership,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            cache_bytes: 16 << 20,
            durability: Durability::Fsync,
            initial_membership: Membership::default(),
        }
    }
}

/// The smallest segment size accepted (tests use tiny segments to cross many boundaries).
pub const MIN_SEGMENT_SIZE: u64 = 64;

impl Options {
    /// The size at which the log moves on to a new segment file (default 64 MiB). A
    /// segment holds at least one entry, so one larger entry makes a larger segment.
    /// Compaction deletes whole segments, so smaller segments free disk sooner.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// How many bytes of recent entries (by [`raft_core::Entry::size`]) to keep in
    /// memory (default 16 MiB). Older entries are read from disk.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Whether writes wait for the disk; see [`Durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The membership a brand-new data directory starts with (the bootstrap
    /// configuration). Ignored when the directory already holds a storage.
    pub fn initial_membership(mut self, membership: Membership) -> Self {
        self.initial_membership = membership;
        self
    }

    /// The segment size.
    pub fn get_segment_size(&self) -> u64 {
        self.segment_size
    }

    /// The cache budget in bytes.
    pub fn get_cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// The durability setting.
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    /// The bootstrap membership.
    pub fn get_initial_membership(&self) -> &Membership {
        &self.initial_membership
    }

    pub(crate) fn sync(&self) -> bool {
        self.durability == Durability::Fsync
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.segment_size < MIN_SEGMENT_SIZE {
            return Err(Error::InvalidOptions("segment_size must be at least 64 bytes"));
        }
        if self.segment_size > u64::from(MAX_RECORD_LEN) {
            return Err(Error::InvalidOptions("segment_size must be at most 1 GiB"));
        }
        Ok(())
    }
}
