//! Where the workspace is: its root, its cargo target directory, and the cargo that
//! runs xtask. Every task that builds or runs something finds them here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The workspace root (xtask's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The cargo target directory (`$CARGO_TARGET_DIR`, relative to `root` if relative;
/// else `target/` in the workspace).
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root.join(d)
            }
        }
        None => root.join("target"),
    }
}

/// The cargo that runs xtask (`$CARGO`), else `cargo` on the `PATH`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}
