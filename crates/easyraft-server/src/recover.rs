//! Disaster recovery on a stopped node's data directory: `easyraft-server restore`
//! (seed a new cluster from a backup) and `easyraft-server unsafe-recover` (make the
//! survivor of a lost majority the only voter). See docs/operations.md.

use std::path::Path;

use easyraft::core::SnapshotMeta;
use easyraft::storage::backup::{force_single_voter, restore_backup, ForcedRecovery};
use easyraft::storage::Options;
use easyraft::Membership;

use crate::config::{Config, ConfigError};
use crate::error::ServerError;

fn failed(config: &Config, e: impl std::fmt::Display) -> ServerError {
    ServerError::Storage {
        path: config.data_dir.clone(),
        reason: e.to_string(),
    }
}

/// Seeds this node's empty `data_dir` from the backup file `backup` (written by
/// `easyraftctl snapshot save`) for a new cluster whose founding members are the ids of
/// `initial_cluster`. Run it on every founding member, then start them as usual: the
/// state machine starts from the backup and the bootstrap settings are ignored.
///
/// # Errors
/// `initial_cluster` empty; the directory holds anything; the backup is damaged
/// (nothing is installed then).
pub fn restore(config: &Config, backup: &Path) -> Result<SnapshotMeta, ServerError> {
    if config.initial_cluster.0.is_empty() {
        return Err(ServerError::Config(ConfigError::Invalid {
            key: "initial_cluster".into(),
            reason: "restore needs the new cluster's founding members".into(),
        }));
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| failed(config, e))?;
    let membership = Membership::with_voters(config.initial_cluster.0.keys().cloned());
    restore_backup(&config.data_dir, Options::default(), backup, membership).map_err(|e| failed(config, e))
}

/// Makes this node the only voter of the log in its `data_dir`, keeping every entry it
/// has (see `raft_storage::backup::force_single_voter` for the risk). Start it
/// afterwards; it elects itself; add new, empty members to it with `--join`.
///
/// # Errors
/// The directory is empty, locked by a running node, or damaged.
pub fn unsafe_recover(config: &Config) -> Result<ForcedRecovery, ServerError> {
    force_single_voter(&config.data_dir, Options::default(), &config.id.as_str().into()).map_err(|e| failed(config, e))
}
