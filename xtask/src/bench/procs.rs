//! The server processes of `cargo xtask bench service`: three `easyraft-server`s or
//! three etcd members on loopback, each cluster in a temporary directory of its own
//! (config files, data directories, logs). A [`Procs`] kills its processes and removes
//! its directory when dropped, so an error or a panic cleans up; SIGINT and SIGTERM
//! do the same for every live cluster ([`clean_up_on_signal`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use crate::error::TaskError;
use crate::ports::{free_ports, loopback};

/// Processes and directories alive now, for the signal handler.
static LIVE: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

/// On SIGINT or SIGTERM, kills every live cluster's processes, removes their
/// directories and exits (130). Call once, early.
pub fn clean_up_on_signal() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
            eprintln!("\ninterrupted: stopping {} processes", live.len());
            for (pid, dir) in live {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                if !dir.as_os_str().is_empty() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            std::process::exit(130);
        });
    });
}

/// Runs `cmd` to its end and returns its output, killed by the signal handler too if
/// SIGINT or SIGTERM comes meanwhile (a load generator, say).
pub fn output_tracked(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((pid, PathBuf::new()));
    let output = child.wait_with_output();
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(p, _)| *p != pid);
    output
}

/// One cluster's processes and directory.
pub struct Procs {
    /// What runs, for messages (`easyraft-server`, `etcd`).
    pub name: &'static str,
    /// The client endpoints, one per member.
    pub endpoints: Vec<SocketAddr>,
    children: Vec<(String, Child)>,
    dir: tempfile::TempDir,
}

impl Procs {
    fn new(name: &'static str, under: &Path) -> Result<Self, TaskError> {
        std::fs::create_dir_all(under)?;
        Ok(Procs {
            name,
            endpoints: Vec::new(),
            children: Vec::new(),
            dir: tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(under)?,
        })
    }

    fn spawn(&mut self, id: &str, cmd: &mut Command) -> Result<(), TaskError> {
        let log = std::fs::File::create(self.log_path(id))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {} ({id}): {e}", self.name))?;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((child.id(), self.dir.path().to_path_buf()));
        self.children.push((id.to_owned(), child));
        Ok(())
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("{id}.log"))
    }

    /// The last lines of every member's log, and whether it still runs: for an error
    /// message.
    pub fn diagnose(&mut self) -> String {
        let mut out = String::new();
        for (id, child) in &mut self.children {
            let state = match child.try_wait() {
                Ok(Some(status)) => format!("exited ({status})"),
                _ => "running".to_owned(),
            };
            let log = std::fs::read_to_string(self.dir.path().join(format!("{id}.log"))).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!("--- {} {id}: {state}; last lines of its log:\n", self.name));
            for l in &lines[lines.len().saturating_sub(8)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// The endpoints as `service_load --endpoints` takes them.
    pub fn endpoint_list(&self) -> String {
        self.endpoints
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        for (_, child) in &mut self.children {
            let pid = child.id();
            let _ = child.kill();
            let _ = child.wait();
            live.retain(|(p, _)| *p != pid);
        }
        // The directory goes with `self.dir`.
    }
}

/// Three `easyraft-server` processes (`binary`, a release build) from config files,
/// the README's quick start on free ports: FileStorage with fsync on, the default
/// `[raft]` timing, logs at `warn`.
pub fn start_easyraft(binary: &Path, under: &Path) -> Result<Procs, TaskError> {
    let mut procs = Procs::new("easyraft-server", under)?;
    let ports = free_ports(6)?;
    let initial: Vec<String> = (0..3)
        .map(|i| format!("node{}=127.0.0.1:{}", i + 1, ports[i]))
        .collect();
    let dir = procs.dir.path().to_path_buf();
    for i in 0..3 {
        let id = format!("node{}", i + 1);
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "id = \"{id}\"\ndata_dir = \"{}\"\nlisten_peer = \"127.0.0.1:{}\"\nlisten_client = \"127.0.0.1:{}\"\ninitial_cluster = \"{}\"\n",
                dir.join("data").join(&id).display(),
                ports[i],
                ports[3 + i],
                initial.join(","),
            ),
        )?;
        procs.spawn(
            &id,
            Command::new(binary)
                .arg("--config")
                .arg(&config)
                .env("RUST_LOG", "warn"),
        )?;
        procs.endpoints.push(loopback(ports[3 + i]));
    }
    Ok(procs)
}

/// Three etcd members (`binary`) on loopback, each with its own data directory, etcd's
/// defaults otherwise (fsync on, 100 ms heartbeat, 1 s election timeout).
pub fn start_etcd(binary: &Path, under: &Path) -> Result<Procs, TaskError> {
    let mut procs = Procs::new("etcd", under)?;
    let ports = free_ports(6)?;
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let client = |i: usize| format!("http://127.0.0.1:{}", ports[3 + i]);
    let initial: Vec<String> = (0..3).map(|i| format!("etcd{}={}", i + 1, peer(i))).collect();
    let dir = procs.dir.path().to_path_buf();
    for i in 0..3 {
        let id = format!("etcd{}", i + 1);
        procs.spawn(
            &id,
            Command::new(binary)
                .arg(format!("--name={id}"))
                .arg(format!("--data-dir={}", dir.join("data").join(&id).display()))
                .arg(format!("--listen-client-urls={}", client(i)))
                .arg(format!("--advertise-client-urls={}", client(i)))
                .arg(format!("--listen-peer-urls={}", peer(i)))
                .arg(format!("--initial-advertise-peer-urls={}", peer(i)))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=easyraft-bench")
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .arg("--log-level=warn")
                .env_remove("ETCD_NAME")
                .env_remove("ETCD_DATA_DIR"),
        )?;
        procs.endpoints.push(loopback(ports[3 + i]));
    }
    Ok(procs)
}
