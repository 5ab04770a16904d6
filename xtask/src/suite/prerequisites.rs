//! What the suite needs beyond Rust, found or installed: etcd (`$ETCD_BIN`, `etcd` on
//! the `PATH`, or Debian's `etcd-server` through `apt-get` when running as root) and a
//! Python virtual environment with `websockets` under the target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::error::SuiteError;
use crate::workspace::{target_dir, workspace_root};

/// The name of the virtual environment's directory under the target directory.
pub const VENV_DIR: &str = "easyraft-venv";
/// The environment variable through which the WebSocket tests find their Python.
pub const PYTHON_ENV: &str = "EASYRAFT_PYTHON";
/// The Python requirements of the suite (relative to the workspace root).
pub const REQUIREMENTS: &str = "crates/raft-transport-ws/tests/python/requirements.txt";

fn is_root() -> bool {
    // The effective uid from /proc (Linux); elsewhere assume not root.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn quiet(cmd: &mut Command) -> Result<ExitStatus, SuiteError> {
    cmd.stdin(Stdio::null())
        .status()
        .map_err(|e| SuiteError::Setup(format!("cannot run {cmd:?}: {e}")))
}

/// What the suite needs, found or to be installed.
#[derive(Debug)]
struct Prerequisites {
    etcd: Option<PathBuf>,
    python: Option<PathBuf>,
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn python_has_websockets(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import websockets"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find() -> Prerequisites {
    let root = workspace_root();
    let python = venv_python(&target_dir(&root).join(VENV_DIR));
    Prerequisites {
        etcd: raft_discovery::testing::etcd_binary().ok(),
        python: python_has_websockets(&python).then_some(python),
    }
}

/// Which prerequisites the selected packages use.
fn needs(packages: &[String]) -> (bool, bool) {
    if packages.is_empty() {
        return (true, true);
    }
    let has = |p: &str| packages.iter().any(|q| q == p);
    let etcd = has("raft-discovery") || has("raft-transport-ws") || has("xtask");
    let python = has("raft-transport-ws");
    (etcd, python)
}

fn apt_install(packages: &[&str]) -> Result<(), SuiteError> {
    let ok = quiet(Command::new("apt-get").args(["update", "-qq"]))?.success()
        && quiet(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-qq"])
                .args(packages),
        )?
        .success();
    if ok {
        Ok(())
    } else {
        Err(SuiteError::Setup(format!(
            "apt-get install -y {} failed",
            packages.join(" ")
        )))
    }
}

fn can_apt() -> bool {
    is_root() && on_path("apt-get").is_some()
}

fn etcd_cannot_be_installed() -> SuiteError {
    SuiteError::Missing(
        "xtask test: etcd is missing (the etcd discovery tests start a real one) and this user cannot \
         install it; run `sudo apt-get install -y etcd-server` (or set ETCD_BIN=/path/to/etcd), then \
         `cargo xtask test` again"
            .into(),
    )
}

/// The etcd binary (`$ETCD_BIN`, else `etcd` on the `PATH`), installing Debian's
/// `etcd-server` through `apt-get` first when it is missing and this user may.
pub fn etcd_or_install() -> Result<PathBuf, SuiteError> {
    match raft_discovery::testing::etcd_binary() {
        Ok(bin) => Ok(bin),
        Err(_) => {
            eprintln!("etcd is missing: installing Debian's etcd-server (apt-get install -y etcd-server)");
            install_etcd()
        }
    }
}

fn install_etcd() -> Result<PathBuf, SuiteError> {
    if !can_apt() {
        return Err(etcd_cannot_be_installed());
    }
    apt_install(&["etcd-server"])?;
    raft_discovery::testing::etcd_binary().map_err(SuiteError::Setup)
}

fn make_venv(venv: &Path) -> Result<bool, SuiteError> {
    let Some(python3) = on_path("python3") else {
        return Ok(false);
    };
    if venv.exists() {
        std::fs::remove_dir_all(venv).map_err(|e| SuiteError::Setup(format!("{}: {e}", venv.display())))?;
    }
    Ok(quiet(
        Command::new(python3)
            .args(["-m", "venv"])
            .arg(venv)
            .stdout(Stdio::null()),
    )?
    .success())
}

fn install_python(venv: &Path) -> Result<PathBuf, SuiteError> {
    if !make_venv(venv)? {
        // Debian's python3 needs python3-venv for `python3 -m venv`.
        if !can_apt() {
            return Err(SuiteError::Missing(format!(
                "xtask test: cannot make a Python virtual environment at {} (the WebSocket tests run a \
                 Python client); run `sudo apt-get install -y python3 python3-venv`, then `cargo xtask \
                 test` again",
                venv.display()
            )));
        }
        apt_install(&["python3", "python3-venv"])?;
        if !make_venv(venv)? {
            return Err(SuiteError::Setup(format!("python3 -m venv {} failed", venv.display())));
        }
    }
    let python = venv_python(venv);
    let requirements = workspace_root().join(REQUIREMENTS);
    let ok = quiet(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?
    .success();
    if !ok || !python_has_websockets(&python) {
        return Err(SuiteError::Setup(format!(
            "{} -m pip install -r {} failed",
            python.display(),
            requirements.display()
        )));
    }
    Ok(python)
}

/// Finds the prerequisites of `packages` (empty: the whole workspace), installs what
/// is missing unless `no_install` (or stops with the command to run), and returns the
/// environment the tests run with.
pub(super) fn prepare(packages: &[String], no_install: bool) -> Result<Vec<(String, PathBuf)>, SuiteError> {
    let (need_etcd, need_python) = needs(packages);
    let mut found = find();
    let venv = target_dir(&workspace_root()).join(VENV_DIR);
    let missing_etcd = need_etcd && found.etcd.is_none();
    let missing_python = need_python && found.python.is_none();
    if no_install {
        if missing_etcd || missing_python {
            let what: Vec<&str> = [(missing_etcd, "etcd"), (missing_python, "Python with websockets")]
                .iter()
                .filter_map(|(m, w)| m.then_some(*w))
                .collect();
            println!(
                "xtask test: --no-install: {} missing; the tests that need it will fail and say so",
                what.join(" and ")
            );
        }
    } else if missing_etcd || missing_python {
        let mut what = Vec::new();
        if missing_etcd {
            what.push("Debian's etcd-server through apt-get (the etcd discovery tests start a real etcd)".to_string());
        }
        if missing_python {
            what.push(format!(
                "a Python virtual environment with websockets in {} (the WebSocket transport's foreign-client test)",
                venv.display()
            ));
        }
        // Stop before installing anything if one of them cannot be installed.
        if missing_etcd && !can_apt() {
            return Err(etcd_cannot_be_installed());
        }
        println!("xtask test: installing {}", what.join(", and "));
        if missing_etcd {
            found.etcd = Some(install_etcd()?);
        }
        if missing_python {
            found.python = Some(install_python(&venv)?);
        }
    } else {
        println!(
            "xtask test: nothing to install (etcd: {}; python: {})",
            found
                .etcd
                .as_ref()
                .map_or("not needed".into(), |p| p.display().to_string()),
            found
                .python
                .as_ref()
                .map_or("not needed".into(), |p| p.display().to_string()),
        );
    }
    let mut env = Vec::new();
    if let Some(etcd) = found.etcd {
        env.push(("ETCD_BIN".to_string(), etcd));
    }
    if let Some(python) = found.python {
        env.push((PYTHON_ENV.to_string(), python));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_packages_that_use_a_prerequisite_ask_for_it() {
        assert_eq!(needs(&[]), (true, true));
        assert_eq!(needs(&["raft-core".into()]), (false, false));
        assert_eq!(needs(&["raft-discovery".into()]), (true, false));
        assert_eq!(needs(&["raft-transport-ws".into()]), (true, true));
    }
}
