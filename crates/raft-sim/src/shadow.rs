//! What the checker remembers of a node's persisted log: the snapshot it starts
//! from and, after it, each entry's term and payload. It follows the node's Readys
//! and compactions with `MemStorage`'s semantics, so after a crash it must equal what
//! the disk holds, and at every step what the node itself believes.

use raft_core::{Entry, EntryPayload, LogIndex, MemStorage, Storage, Term};

/// What an entry carries, reduced to what the checker compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A leader's no-op.
    Noop,
    /// A client command: the simulator's commands are 8-byte ids; other payloads are
    /// hashed.
    Command(u64),
    /// A membership change.
    Membership,
}

impl Payload {
    /// The payload of an entry.
    pub fn of(e: &Entry) -> Self {
        match &e.payload {
            EntryPayload::Noop => Payload::Noop,
            EntryPayload::Command(b) => Payload::Command(match <[u8; 8]>::try_from(&b[..]) {
                Ok(id) => u64::from_le_bytes(id),
                // FNV-1a, so that any other command still compares by content.
                Err(_) => b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
                    (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
                }),
            }),
            EntryPayload::Membership(_) => Payload::Membership,
        }
    }
}

/// One log slot: the entry's term and payload.
pub(crate) type Slot = (Term, Payload);

/// What a log holds at an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// Covered by the snapshot (only committed entries ever are).
    Compacted,
    /// An entry.
    Entry(Slot),
    /// Beyond the log.
    Missing,
}

/// A persisted log: `snapshot` then `entries[k]` at index `snapshot.0 + 1 + k`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShadowLog {
    /// The snapshot's index and term (`(0, 0)` for none).
    pub(crate) snapshot: (LogIndex, Term),
    entries: Vec<Slot>,
}

impl ShadowLog {
    /// What a disk holds.
    pub(crate) fn of_storage(store: &MemStorage) -> Self {
        let first = store.first_index().unwrap_or(1);
        let last = store.last_index().unwrap_or(0);
        let snap_term = store.term(first - 1).unwrap_or(0);
        let entries = store
            .entries(first, last + 1, u64::MAX)
            .unwrap_or_default()
            .iter()
            .map(|e| (e.term, Payload::of(e)))
            .collect();
        ShadowLog {
            snapshot: (first - 1, snap_term),
            entries,
        }
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.snapshot.0 + self.entries.len() as LogIndex
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.1, |s| s.0)
    }

    pub(crate) fn at(&self, index: LogIndex) -> At {
        if index <= self.snapshot.0 {
            return At::Compacted;
        }
        match self.entries.get((index - self.snapshot.0 - 1) as usize) {
            Some(s) => At::Entry(*s),
            None => At::Missing,
        }
    }

    /// The term at `index`, including the snapshot's own index.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        match self.at(index) {
            At::Entry(s) => Some(s.0),
            At::Compacted if index == self.snapshot.0 => Some(self.snapshot.1),
            _ => None,
        }
    }

    /// Whether the log holds `slot` at `index` (a compacted index counts: only
    /// committed entries are ever compacted, and the checker verifies each snapshot).
    pub(crate) fn holds(&self, index: LogIndex, slot: Slot) -> bool {
        match self.at(index) {
            At::Compacted => true,
            At::Entry(s) => s == slot,
            At::Missing => false,
        }
    }

    /// Drops the entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        let keep = index.saturating_sub(self.snapshot.0 + 1) as usize;
        self.entries.truncate(keep);
    }

    /// Appends one entry (its index is `last_index() + 1`).
    pub(crate) fn push(&mut self, slot: Slot) {
        self.entries.push(slot);
    }

    /// `MemStorage::apply_snapshot`: a stale snapshot is ignored; entries after the
    /// snapshot are kept if the log holds its last entry, dropped otherwise.
    pub(crate) fn install(&mut self, index: LogIndex, term: Term) {
        if index < self.snapshot.0 {
            return;
        }
        if self.term(index) == Some(term) {
            let drop = (index - self.snapshot.0) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.snapshot = (index, term);
    }

    /// The persisted entries, as `(index, slot)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (LogIndex, Slot)> + '_ {
        let base = self.snapshot.0 + 1;
        self.entries
            .iter()
            .enumerate()
            .map(move |(k, s)| (base + k as LogIndex, *s))
    }
}

/// The simulated state machine's fingerprint: a hash chain over the applied entries.
/// A snapshot carries it, so the checker can tell whether a snapshot holds exactly
/// the committed prefix.
pub(crate) fn digest_step(digest: u64, index: LogIndex, slot: Slot) -> u64 {
    let payload = match slot.1 {
        Payload::Noop => 0,
        Payload::Command(c) => c.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        Payload::Membership => u64::MAX,
    };
    let mut z = digest ^ index.rotate_left(17) ^ slot.0.rotate_left(41) ^ payload;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Snapshot data: the applied index and digest, then `pad` filler bytes (so that
/// snapshots span several chunks).
pub(crate) fn encode_snapshot(index: LogIndex, digest: u64, pad: usize) -> bytes::Bytes {
    let mut v = Vec::with_capacity(16 + pad);
    v.extend_from_slice(&index.to_le_bytes());
    v.extend_from_slice(&digest.to_le_bytes());
    v.resize(16 + pad, 0xa5);
    v.into()
}

/// The applied index and digest a snapshot's data claims.
pub(crate) fn decode_snapshot(data: &[u8]) -> Option<(LogIndex, u64)> {
    let index = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let digest = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
    Some((index, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_a_matching_tail_and_drops_a_conflicting_one() {
        let mut log = ShadowLog::default();
        for t in [1, 1, 2, 2] {
            log.push((t, Payload::Noop));
        }
        log.install(2, 1);
        assert_eq!(
            (log.snapshot, log.last_index(), log.at(3)),
            ((2, 1), 4, At::Entry((2, Payload::Noop)))
        );
        assert_eq!(log.at(2), At::Compacted);
        log.install(3, 9);
        assert_eq!((log.last_index(), log.last_term()), (3, 9));
        log.install(1, 1);
        assert_eq!(log.snapshot, (3, 9), "a stale snapshot is ignored");
        let data = encode_snapshot(7, 42, 5);
        assert_eq!((data.len(), decode_snapshot(&data)), (21, Some((7, 42))));
    }
}
