//! Discovery from a JSON file, a map from node id to address:
//!
//! ```json
//! {
//!   "node1": { "host": "192.168.1.100", "port": 8081 },
//!   "node2": { "host": "192.168.1.101", "port": 8082 }
//! }
//! ```
//!
//! The file is re-read when it changes (its size, modification time or inode differ
//! from the last read; checked on every access) and on `refresh()`. A file that does
//! not parse, or names a node twice, is a typed error naming the file and line, and
//! the last good map stays in force. `register_node`/`unregister_node` rewrite the
//! file atomically (temp file, fsync, rename, fsync of the directory), so a reader
//! never sees half a file.

mod parse;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use raft_core::NodeId;
use tracing::{info, warn};

use self::parse::parse;
use crate::{DiscoveryError, NodeAddress, ServiceDiscovery};

/// What identifies one version of the file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Fingerprint {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The last good map.
    map: BTreeMap<NodeId, NodeAddress>,
    /// The version of the file last read (good or bad), so a bad file is reported
    /// once, not on every access.
    seen: Option<Fingerprint>,
}

/// Discovery from a JSON config file, reloaded when it changes.
#[derive(Debug)]
pub struct FileServiceDiscovery {
    path: PathBuf,
    state: Mutex<State>,
    /// Serializes this process's read-modify-write cycles of the file.
    writer: tokio::sync::Mutex<()>,
}

impl FileServiceDiscovery {
    /// Reads the file at `path`; it must exist and parse.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, DiscoveryError> {
        let path = path.into();
        let (map, fp) = load(&path)?;
        Ok(FileServiceDiscovery {
            path,
            state: Mutex::new(State { map, seen: Some(fp) }),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Like [`open`](Self::open), but first writes an empty map (`{}`) if the file
    /// does not exist yet, for nodes that register themselves.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, DiscoveryError> {
        let path = path.into();
        if !path.exists() {
            write_atomically(&path, &BTreeMap::new())?;
        }
        Self::open(path)
    }

    /// The file this discovery reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the file if it changed since the last read (or always, if `force`).
    /// On a bad file the last good map stays and the error is returned (only once
    /// per version of the file unless `force`).
    fn reload(&self, force: bool) -> Result<(), DiscoveryError> {
        if !force {
            let meta = std::fs::metadata(&self.path).map_err(|source| DiscoveryError::Io {
                path: self.path.clone(),
                source,
            });
            let fp = meta.as_ref().ok().map(Fingerprint::of);
            if fp.is_some() && fp == self.lock().seen {
                return Ok(());
            }
            meta?;
        }
        match load(&self.path) {
            Ok((map, fp)) => {
                let mut st = self.lock();
                if st.map != map {
                    info!(path = %self.path.display(), nodes = map.len(), "discovery file reloaded");
                }
                st.map = map;
                st.seen = Some(fp);
                Ok(())
            }
            Err(e) => {
                if let Ok(meta) = std::fs::metadata(&self.path) {
                    self.lock().seen = Some(Fingerprint::of(&meta));
                }
                Err(e)
            }
        }
    }

    /// Reloads on change, logging (not returning) a bad file: readers keep the
    /// last good map.
    fn reload_quietly(&self) {
        if let Err(e) = self.reload(false) {
            warn!(error = %e, "discovery file not reloaded; keeping the last good map");
        }
    }

    /// Read-modify-write of the file under the in-process writer lock.
    async fn update<R: Send + 'static>(
        &self,
        change: impl FnOnce(&mut BTreeMap<NodeId, NodeAddress>) -> Result<R, DiscoveryError> + Send + 'static,
    ) -> Result<R, DiscoveryError> {
        let _guard = self.writer.lock().await;
        let path = self.path.clone();
        let (map, fp, out) = tokio::task::spawn_blocking(move || {
            // Start from what is on disk now (another process may have changed it);
            // refuse to overwrite a file that does not parse: it is someone's edit.
            let (mut map, _) = load(&path)?;
            let out = change(&mut map)?;
            let fp = write_atomically(&path, &map)?;
            Ok::<_, DiscoveryError>((map, fp, out))
        })
        .await
        .map_err(|e| DiscoveryError::Backend {
            backend: "file",
            reason: format!("writer task failed: {e}"),
        })??;
        let mut st = self.lock();
        st.map = map;
        st.seen = Some(fp);
        Ok(out)
    }
}

#[async_trait]
impl ServiceDiscovery for FileServiceDiscovery {
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError> {
        self.reload_quietly();
        self.lock()
            .map
            .get(id)
            .cloned()
            .ok_or_else(|| DiscoveryError::UnknownNode(id.clone()))
    }

    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        self.reload_quietly();
        Ok(self.lock().map.clone())
    }

    async fn register_node(&self, id: &NodeId, address: NodeAddress) -> Result<(), DiscoveryError> {
        let id = id.clone();
        self.update(move |map| {
            map.insert(id, address);
            Ok(())
        })
        .await
    }

    async fn unregister_node(&self, id: &NodeId) -> Result<(), DiscoveryError> {
        let id = id.clone();
        self.update(move |map| map.remove(&id).map(|_| ()).ok_or(DiscoveryError::UnknownNode(id)))
            .await
    }

    async fn refresh(&self) -> Result<(), DiscoveryError> {
        self.reload(true)
    }
}

/// Reads and parses the file, with the version read (from the open handle, so
/// the two match even if the file is replaced meanwhile).
fn load(path: &Path) -> Result<(BTreeMap<NodeId, NodeAddress>, Fingerprint), DiscoveryError> {
    let io = |source| DiscoveryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let fp = Fingerprint::of(&file.metadata().map_err(io)?);
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok((parse(path, &text)?, fp))
}

/// Writes `map` to `path` so that readers see the old file or the new one, never a
/// mix: a temp file in the same directory, fsync, rename over `path`, fsync of the
/// directory (so the rename itself survives a crash).
fn write_atomically(path: &Path, map: &BTreeMap<NodeId, NodeAddress>) -> Result<Fingerprint, DiscoveryError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |source| DiscoveryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut text = serde_json::to_string_pretty(map).map_err(|e| io(std::io::Error::other(e)))?;
    text.push('\n');
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let fp = Fingerprint::of(&f.metadata()?);
        std::fs::rename(&tmp, path)?;
        Ok(fp)
    })();
    let fp = match written {
        Ok(fp) => fp,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
    };
    #[cfg(unix)]
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(fp)
}
