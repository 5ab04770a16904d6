//! The names of the files a data directory holds besides its segments (which name
//! themselves: `segment::segment_name`): the state file, the snapshot files and the
//! temp files a crash may leave behind.

use raft_core::{LogIndex, Term};

/// The state file's name.
pub(crate) const STATE_FILE: &str = "state";
/// The suffix of a file being written, until it is renamed into place.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// The prefix of a snapshot staging file's name (it ends in [`TMP_SUFFIX`]).
pub(crate) const STAGING_PREFIX: &str = "snapshot-staging-";

/// The file name of the snapshot at `index` of `term`.
pub(crate) fn snapshot_name(index: LogIndex, term: Term) -> String {
    format!("snapshot-{index:020}-{term:020}.snap")
}

/// The index and term a snapshot file name stands for.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<(LogIndex, Term)> {
    let rest = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    let (index, term) = rest.split_once('-')?;
    let num = |s: &str| {
        (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((num(index)?, num(term)?))
}

/// Whether `name` is a temp file this crate writes (left behind by a crash).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.strip_suffix(TMP_SUFFIX)
        .is_some_and(|n| n == STATE_FILE || parse_snapshot_name(n).is_some() || n.starts_with(STAGING_PREFIX))
}
