//! Opening a multi-log directory: the segments replayed oldest first into every
//! group's state, by the rules in `docs/storage.md`:
//!
//! 1. Every file must be one a multi-log writes; temp files of an interrupted snapshot
//!    are removed.
//! 2. Every segment opens with a checkpoint (every live group's meta, and the older
//!    segments still holding live records); only the newest segment may end in a torn
//!    write, which is cut off with a warning (a newest segment left without its
//!    checkpoint is removed and written again).
//! 3. Records apply in order: an entry replaces its group's entries from its index on;
//!    a group record (creation, snapshot) or a checkpoint sets the group's meta and keeps
//!    only its entries after the snapshot up to the record's last index; a checkpoint
//!    forgets the groups it does not list; `Remove` forgets one.
//! 4. A segment the newest checkpoint lists must exist (else [`Error::MissingLogFile`]);
//!    an older one it does not list, or that a later `Dropped` record names, is a
//!    deletion a crash interrupted and is finished now.
//! 5. Each group's entries must follow its snapshot without a hole, with terms that
//!    never go down, and its commit index must be in its log or snapshot; its snapshot
//!    file must match; snapshot files of no live group are removed.
//!
//! Nothing read from disk is trusted to be in range: indexes are at most
//! [`MAX_INDEX`], terms at least 1, snapshots possible ([`is_impossible_snapshot`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use raft_core::{LogIndex, MAX_INDEX};
use tracing::{debug, info, warn};

use super::record::{self, parse_group_snapshot_name, parse_segment_name, segment_name, GroupMeta, Record};
use super::state::{GroupState, Loc};
use super::wal::{SegFile, FIRST_RECORD};
use crate::error::{Corruption, Error};
use crate::format::{FileKind, RECORD_HEADER_LEN};
use crate::names::is_temp_name;
use crate::options::Options;
use crate::record_scan::{scan_header, scan_records, Reader};
use crate::snapshot_file::read_snapshot;
use crate::state::is_impossible_snapshot;
use crate::vfs::{OpenMode, Vfs, LOCK_FILE};

/// A recovered directory.
pub(crate) struct Recovered {
    /// The newest segment (or the one to create, with `needs_segment`).
    pub(crate) seq: u64,
    pub(crate) end: u64,
    pub(crate) data_start: u64,
    pub(crate) needs_segment: bool,
    pub(crate) groups: BTreeMap<u64, GroupState>,
    pub(crate) files: BTreeMap<u64, Arc<SegFile>>,
}

fn is_ours(name: &str) -> bool {
    name == LOCK_FILE
        || parse_segment_name(name).is_some()
        || parse_group_snapshot_name(name).is_some()
        || is_temp_name(name)
}

/// Refuses a directory holding anything a multi-log does not write.
pub(crate) fn refuse_foreign(vfs: &dyn Vfs, dir: &Path) -> Result<(), Error> {
    crate::recovery::refuse_unknown(vfs, dir, is_ours)
}

/// A group during replay: its entries may have holes until the end (an entry in a
/// segment deleted since was overwritten or compacted by a later record), so they are
/// kept by index, in memory proportional to the records, whatever their indexes.
struct ReplayGroup {
    meta: GroupMeta,
    entries: BTreeMap<LogIndex, Loc>,
}

impl ReplayGroup {
    fn new(meta: GroupMeta) -> Self {
        ReplayGroup {
            meta,
            entries: BTreeMap::new(),
        }
    }

    /// Entry `index` replaces the entries from `index` on.
    fn put(&mut self, index: LogIndex, loc: Loc) {
        self.entries.split_off(&index);
        self.entries.insert(index, loc);
    }

    /// Keeps only the entries in `after + 1 ..= last`.
    fn bound(&mut self, after: LogIndex, last: LogIndex) {
        if let Some(end) = last.checked_add(1) {
            self.entries.split_off(&end);
        }
        self.entries = match after.checked_add(1) {
            Some(start) => self.entries.split_off(&start),
            None => BTreeMap::new(),
        };
    }
}

/// The replay's state across segments.
#[derive(Default)]
struct Replay {
    groups: BTreeMap<u64, ReplayGroup>,
    /// The newest checkpoint's segment and the older segments it lists, minus those
    /// `Dropped` since.
    checkpoint: Option<u64>,
    expected: BTreeSet<u64>,
}

impl Replay {
    /// Applies the record at `offset` of segment `seq`; `first` says it opens the segment.
    fn apply(&mut self, seq: u64, offset: u64, payload: &[u8], first: bool) -> Result<(), Corruption> {
        if let Some((group, term, index)) = record::peek_entry(payload) {
            if first {
                return Err(Corruption::MissingCheckpoint);
            }
            let g = self.groups.get_mut(&group).ok_or(Corruption::UnknownGroup { group })?;
            if index == 0 || index > MAX_INDEX {
                return Err(Corruption::IndexBeyondLimit { index });
            }
            if term == 0 {
                return Err(Corruption::ZeroTerm { index });
            }
            let len = u32::try_from(payload.len() + RECORD_HEADER_LEN).map_err(|_| Corruption::SegmentTooLong)?;
            g.put(index, Loc { seq, offset, len, term });
            return Ok(());
        }
        let record = record::decode(payload).ok_or(Corruption::Undecodable)?;
        match (first, record) {
            (true, Record::Checkpoint { segments, groups }) => {
                let mut old = std::mem::take(&mut self.groups);
                for meta in groups {
                    let mut g = old
                        .remove(&meta.group)
                        .unwrap_or_else(|| ReplayGroup::new(meta.clone()));
                    set_meta(&mut g, meta)?;
                    self.groups.insert(g.meta.group, g);
                }
                self.checkpoint = Some(seq);
                self.expected = segments.into_iter().collect();
            }
            (true, _) => return Err(Corruption::MissingCheckpoint),
            (false, Record::Checkpoint { .. } | Record::Entry { .. }) => return Err(Corruption::Undecodable),
            (false, Record::Group(meta)) => {
                let id = meta.group;
                let g = self.groups.entry(id).or_insert_with(|| ReplayGroup::new(meta.clone()));
                set_meta(g, meta)?;
            }
            (false, Record::HardState { group, hard_state }) => {
                let g = self.groups.get_mut(&group).ok_or(Corruption::UnknownGroup { group })?;
                g.meta.hard_state = hard_state;
            }
            (false, Record::Remove { group }) => {
                self.groups.remove(&group).ok_or(Corruption::UnknownGroup { group })?;
            }
            (false, Record::Dropped { segments }) => {
                for s in segments {
                    self.expected.remove(&s);
                }
            }
        }
        Ok(())
    }
}

/// Sets a group's meta from a record and keeps only the entries it covers.
fn set_meta(g: &mut ReplayGroup, meta: GroupMeta) -> Result<(), Corruption> {
    let (index, term) = (meta.snapshot.index, meta.snapshot.term);
    if is_impossible_snapshot(index, term) || meta.last_index < index || meta.last_index > MAX_INDEX {
        return Err(Corruption::ImpossibleSnapshot { index, term });
    }
    g.bound(index, meta.last_index);
    g.meta = meta;
    Ok(())
}

/// Recovers the (already locked) directory `dir`.
pub(crate) fn recover(vfs: &Arc<dyn Vfs>, dir: &Path, options: &Options) -> Result<Recovered, Error> {
    let sync = options.sync();
    let mut seqs = Vec::new();
    let mut snapshots = Vec::new();
    let mut removed = false;
    for name in vfs.list(dir).map_err(Error::io("list", dir))? {
        let path = dir.join(&name);
        if name == LOCK_FILE {
        } else if let Some(seq) = parse_segment_name(&name) {
            seqs.push(seq);
        } else if let Some(snap) = parse_group_snapshot_name(&name) {
            snapshots.push((snap, path));
        } else if is_temp_name(&name) {
            debug!(path = %path.display(), "removing the temp file of an interrupted write");
            vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
            removed = true;
        } else {
            return Err(Error::ForeignFile {
                dir: dir.to_owned(),
                path,
            });
        }
    }
    seqs.sort_unstable();
    if seqs.is_empty() && !snapshots.is_empty() {
        return Err(Error::MissingState {
            path: dir.join(segment_name(1)),
        });
    }

    let mut replay = Replay::default();
    let mut files = BTreeMap::new();
    let (mut next_seq, mut end, mut data_start, mut needs_segment) = (1, 0, 0, true);
    for (k, &seq) in seqs.iter().enumerate() {
        let is_last = k + 1 == seqs.len();
        let path = dir.join(segment_name(seq));
        let corrupt = |offset, kind| Error::Corrupt {
            path: path.clone(),
            offset,
            kind,
        };
        if seq == 0 || seq == u64::MAX {
            return Err(corrupt(0, Corruption::SegmentIndexOutOfRange { first: seq }));
        }
        let file = vfs.open(&path, OpenMode::ReadWrite).map_err(Error::io("open", &path))?;
        let len = file.size().map_err(Error::io("stat", &path))?;
        let mut r = Reader::new(&*file, len);
        let torn = match scan_header(&mut r, FileKind::MultiSegment, is_last, &path)? {
            None => true,
            Some(base) if base != seq => {
                return Err(corrupt(
                    0,
                    Corruption::NameMismatch {
                        name: seq,
                        header: base,
                    },
                ));
            }
            Some(_) => {
                let mut count = 0u64;
                let mut cp_end = FIRST_RECORD;
                let stop = scan_records(&mut r, FIRST_RECORD, is_last, sync, &path, |offset, payload| {
                    replay.apply(seq, offset, payload, count == 0)?;
                    count += 1;
                    if count == 1 {
                        cp_end = offset + (payload.len() + RECORD_HEADER_LEN) as u64;
                    }
                    Ok(())
                })?;
                if count == 0 && !is_last {
                    return Err(corrupt(FIRST_RECORD, Corruption::MissingCheckpoint));
                }
                (next_seq, end, data_start, needs_segment) = (seq, stop, cp_end, false);
                count == 0
            }
        };
        drop(r);
        if torn {
            // The newest segment holds nothing acknowledged: not even its checkpoint.
            warn!(path = %path.display(), "removing a new segment whose start is a torn write");
            drop(file);
            vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
            removed = true;
            (next_seq, end, data_start, needs_segment) = (seq, 0, 0, true);
            continue;
        }
        files.insert(seq, Arc::new(SegFile { path, file }));
    }

    // Segments: the newest checkpoint's list must be there; others older are leftovers.
    if let Some(cp) = replay.checkpoint {
        for &seq in &replay.expected {
            if !files.contains_key(&seq) {
                return Err(Error::MissingLogFile {
                    path: dir.join(segment_name(seq)),
                });
            }
        }
        let leftovers: Vec<u64> = files
            .keys()
            .filter(|&&s| s < cp && !replay.expected.contains(&s))
            .copied()
            .collect();
        for seq in leftovers {
            let path = dir.join(segment_name(seq));
            info!(path = %path.display(), "finishing the deletion of a segment no group needs");
            files.remove(&seq);
            vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
            removed = true;
        }
    }

    // Groups: entries right after the snapshot, terms that never go down, commit in range.
    let mut groups = BTreeMap::new();
    for (id, mut r) in std::mem::take(&mut replay.groups) {
        let snap = r.meta.snapshot.clone();
        r.bound(snap.index, MAX_INDEX);
        let mut g = GroupState::new(r.meta);
        let mut previous = snap.term;
        for (index, loc) in r.entries {
            let (path, offset) = (dir.join(segment_name(loc.seq)), loc.offset);
            // Indexes are at most MAX_INDEX (checked when read): no overflow.
            let expected = snap.index + 1 + g.log.len() as u64;
            if index != expected {
                return Err(Error::GroupLogHole {
                    path,
                    offset,
                    group: id,
                    expected,
                    found: index,
                });
            }
            if !files.contains_key(&loc.seq) {
                return Err(Error::MissingLogFile { path });
            }
            if loc.term < previous {
                return Err(Error::Corrupt {
                    path,
                    offset,
                    kind: Corruption::TermGoesDown {
                        index,
                        term: loc.term,
                        previous,
                    },
                });
            }
            previous = loc.term;
            g.log.push_back(loc);
        }
        let last_index = g.last_index();
        if g.meta.hard_state.commit > last_index {
            let log_path = g
                .log
                .back()
                .map_or_else(|| dir.to_owned(), |l| dir.join(segment_name(l.seq)));
            return Err(Error::HardStateBeyondLog {
                path: dir.join(segment_name(next_seq)),
                offset: 0,
                commit: g.meta.hard_state.commit,
                last_index,
                log_path,
            });
        }
        if g.meta.snapshot_file {
            let name = record::group_snapshot_name(id, snap.index, snap.term);
            read_snapshot(&**vfs, &dir.join(name), &snap, false)?;
        }
        groups.insert(id, g);
    }
    for ((group, index, term), path) in snapshots {
        let current = groups
            .get(&group)
            .is_some_and(|g| g.meta.snapshot_file && (g.meta.snapshot.index, g.meta.snapshot.term) == (index, term));
        if !current {
            info!(path = %path.display(), "removing a snapshot that is no group's current one");
            vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
            removed = true;
        }
    }
    if removed && sync {
        vfs.sync_dir(dir).map_err(Error::io("fsync", dir))?;
    }
    info!(
        dir = %dir.display(),
        groups = groups.len(),
        segments = files.len(),
        "opened multi-log"
    );
    Ok(Recovered {
        seq: next_seq,
        end,
        data_start,
        needs_segment,
        groups,
        files,
    })
}
