//! Opening a data directory: what is on disk after a clean shutdown or a crash, turned
//! back into a log, a hard state and a snapshot, by the rules in `docs/storage.md`:
//!
//! 1. Every file must be one this crate writes; temp files of an interrupted atomic
//!    write are removed, and so are snapshot files other than the current one.
//! 2. No state file: a fresh directory (it gets one now), unless a log or snapshot
//!    exists, which is an error (the term and vote would be forgotten).
//! 3. Segments are checked record by record; only the last may end in a torn write,
//!    which is cut off with a warning. Segments must follow each other without a hole.
//! 4. The log is reconciled with the snapshot: segments entirely behind it are removed
//!    (an interrupted compaction); a log that does not contain the snapshot's last entry
//!    with the snapshot's term is removed (an interrupted snapshot install); a log that
//!    starts after the snapshot's next index is a hole, an error.
//! 5. The hard state's commit index must be in the log or the snapshot.
//!
//! Nothing read from disk is trusted to be in range: the snapshot's index must be at
//! most raft-core's [`raft_core::MAX_SNAPSHOT_INDEX`] (and only index 0 has term 0), a segment's
//! first index in `1..=MAX_INDEX`, every entry's index at most [`MAX_INDEX`], and terms
//! at least 1 and never lower than the term before them (the snapshot's, for the
//! first entry after it). With those bounds, `index + 1` and `next_index - 1` below
//! cannot overflow.

use std::path::Path;
use std::sync::Arc;

use raft_core::{SnapshotMeta, MAX_INDEX};
use tracing::{debug, info, warn};

use crate::error::{Corruption, Error};
use crate::format::FILE_HEADER_LEN;
use crate::names::{is_temp_name, parse_snapshot_name, snapshot_name, STATE_FILE};
use crate::options::Options;
use crate::segment::{parse_segment_name, segment_name, Scanned, Segment};
use crate::snapshot_file::read_snapshot;
use crate::state::{is_impossible_snapshot, read_state, write_state, StateRecord};
use crate::terms::TermRuns;
use crate::vfs::{Vfs, LOCK_FILE};
use crate::wal::Wal;

/// A recovered directory.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) state: StateRecord,
    pub(crate) wal: Wal,
}

/// Whether `name` is a file this crate writes in a data directory.
fn is_ours(name: &str) -> bool {
    name == LOCK_FILE
        || name == STATE_FILE
        || parse_segment_name(name).is_some()
        || parse_snapshot_name(name).is_some()
        || is_temp_name(name)
}

/// Refuses a directory that holds anything this crate does not write, before anything
/// (even the lock file) is written into it: pointing the storage at the wrong
/// directory must leave that directory alone.
pub(crate) fn refuse_foreign(vfs: &dyn Vfs, dir: &Path) -> Result<(), Error> {
    refuse_unknown(vfs, dir, is_ours)
}

/// [`refuse_foreign`] for a directory whose own files are those `is_ours` accepts.
pub(crate) fn refuse_unknown(vfs: &dyn Vfs, dir: &Path, is_ours: fn(&str) -> bool) -> Result<(), Error> {
    let names = match vfs.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for name in names {
        let path = dir.join(&name);
        if !is_ours(&name) || vfs.is_dir(&path) {
            return Err(Error::ForeignFile {
                dir: dir.to_owned(),
                path,
            });
        }
    }
    Ok(())
}

/// Recovers the (already locked) data directory `dir`.
pub(crate) fn recover(vfs: &Arc<dyn Vfs>, dir: &Path, options: &Options) -> Result<Recovered, Error> {
    let sync = options.sync();
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    let mut has_state = false;
    let mut removed = false;
    for name in vfs.list(dir).map_err(Error::io("list", dir))? {
        let path = dir.join(&name);
        if name == LOCK_FILE {
        } else if name == STATE_FILE {
            has_state = true;
        } else if let Some(first) = parse_segment_name(&name) {
            segments.push(first);
        } else if let Some(snap) = parse_snapshot_name(&name) {
            snapshots.push(snap);
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
    segments.sort_unstable();

    let state = match has_state.then(|| read_state(&**vfs, dir)).transpose()?.flatten() {
        Some(state) => state,
        None if segments.is_empty() && snapshots.is_empty() => {
            let state = StateRecord::fresh(options.get_initial_membership().clone());
            write_state(&**vfs, dir, &state, sync)?;
            info!(dir = %dir.display(), "created a new raft storage");
            return Ok(Recovered {
                wal: Wal::new(
                    vfs.clone(),
                    dir.to_owned(),
                    sync,
                    options.get_segment_size(),
                    Vec::new(),
                    TermRuns::new(1),
                    1,
                ),
                state,
            });
        }
        None => {
            return Err(Error::MissingState {
                path: dir.join(STATE_FILE),
            })
        }
    };
    let snap = &state.snapshot;
    check_snapshot_bounds(snap, &dir.join(STATE_FILE))?;

    // Snapshots: the current one must be there and match; others are leftovers.
    if state.snapshot_file {
        read_snapshot(&**vfs, &dir.join(snapshot_name(snap.index, snap.term)), snap, false)?;
    }
    for (index, term) in snapshots {
        if state.snapshot_file && (index, term) == (snap.index, snap.term) {
            continue;
        }
        let path = dir.join(snapshot_name(index, term));
        info!(path = %path.display(), "removing a snapshot that is not the current one");
        vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
        removed = true;
    }
    if removed && sync {
        vfs.sync_dir(dir).map_err(Error::io("fsync", dir))?;
    }

    // Segments, in order, without holes.
    let mut terms = TermRuns::new(segments.first().copied().unwrap_or(snap.index + 1));
    let mut segs: Vec<Segment> = Vec::new();
    for (k, &first) in segments.iter().enumerate() {
        let path = dir.join(segment_name(first));
        if !(1..=MAX_INDEX).contains(&first) {
            return Err(Error::Corrupt {
                path,
                offset: 0,
                kind: Corruption::SegmentIndexOutOfRange { first },
            });
        }
        if let Some(prev) = segs.last() {
            if first != prev.next_index() {
                return Err(Error::MissingSegment {
                    path,
                    expected: prev.next_index(),
                    found: first,
                });
            }
        }
        let is_last = k + 1 == segments.len();
        match Segment::scan(&**vfs, path.clone(), first, is_last, sync, &mut terms)? {
            Scanned::Segment(seg) if seg.count() == 0 && !is_last => {
                return Err(Error::Corrupt {
                    path,
                    offset: seg.end,
                    kind: Corruption::EmptySegment,
                })
            }
            Scanned::Segment(seg) => segs.push(seg),
            Scanned::TornHeader => {
                warn!(path = %path.display(), "removing a new segment whose header is a torn write");
                vfs.remove_file(&path).map_err(Error::io("remove", &path))?;
                if sync {
                    vfs.sync_dir(dir).map_err(Error::io("fsync", dir))?;
                }
            }
        }
    }
    let next = segs.last().map_or(snap.index + 1, Segment::next_index);
    if segs.is_empty() {
        terms.reset(next);
    }
    let mut wal = Wal::new(
        vfs.clone(),
        dir.to_owned(),
        sync,
        options.get_segment_size(),
        segs,
        terms,
        next,
    );

    // The log against the snapshot.
    if let Some(first_path) = wal.first_path() {
        let first = wal.first_index();
        if first > snap.index + 1 {
            let path = first_path.to_owned();
            return Err(Error::MissingSegment {
                path,
                expected: snap.index + 1,
                found: first,
            });
        }
        let last = wal.next_index() - 1;
        if last < snap.index {
            info!(
                last,
                snapshot = snap.index,
                "removing log entries that are all covered by the snapshot"
            );
            wal.clear(snap.index + 1)?;
        } else if first <= snap.index && wal.term(snap.index) != Some(snap.term) {
            warn!(
                snapshot = snap.index,
                snapshot_term = snap.term,
                log_term = ?wal.term(snap.index),
                "the log conflicts with the snapshot: completing an interrupted snapshot install by removing it"
            );
            wal.clear(snap.index + 1)?;
        } else {
            // The log continues the snapshot: its first entry after it must not go
            // below the snapshot's term (checked before anything is removed).
            let after = snap.index + 1;
            if let (Some(term), Some((path, offset))) = (wal.term(after), wal.locate(after)) {
                if term < snap.term {
                    return Err(Error::Corrupt {
                        path: path.to_owned(),
                        offset,
                        kind: Corruption::TermGoesDown {
                            index: after,
                            term,
                            previous: snap.term,
                        },
                    });
                }
            }
            let n = wal.remove_through(snap.index)?;
            if n > 0 {
                info!(
                    segments = n,
                    snapshot = snap.index,
                    "removed segments compacted into the snapshot"
                );
            }
        }
    }

    let last_index = wal.next_index() - 1;
    if state.hard_state.commit > last_index {
        return Err(Error::HardStateBeyondLog {
            path: dir.join(STATE_FILE),
            offset: FILE_HEADER_LEN as u64,
            commit: state.hard_state.commit,
            last_index,
            log_path: wal.last_path().map_or_else(|| dir.to_owned(), Path::to_owned),
        });
    }
    info!(
        dir = %dir.display(),
        first_index = snap.index + 1,
        last_index,
        segments = wal.segment_count(),
        term = state.hard_state.term,
        "opened raft storage"
    );
    Ok(Recovered { state, wal })
}

/// Refuses snapshot metadata (from the state file at `path`) that no storage writes
/// (see [`is_impossible_snapshot`]).
pub(crate) fn check_snapshot_bounds(snap: &SnapshotMeta, path: &Path) -> Result<(), Error> {
    if is_impossible_snapshot(snap.index, snap.term) {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            offset: FILE_HEADER_LEN as u64,
            kind: Corruption::ImpossibleSnapshot {
                index: snap.index,
                term: snap.term,
            },
        });
    }
    Ok(())
}
