//! A real `etcd` child process on free loopback ports with a temporary data
//! directory, killed (and its directory removed) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{EtcdConfig, EtcdServiceDiscovery, ServiceDiscovery};

/// How to get `etcd` on this machine, for error messages.
pub const INSTALL_HINT: &str =
    "etcd is not installed: run the suite with `cargo xtask test` (README.md), which installs it, or install it with `apt-get install -y etcd-server` (Debian/Ubuntu), or point ETCD_BIN at an etcd binary";

/// A running single-member etcd.
#[derive(Debug)]
pub struct EtcdServer {
    binary: PathBuf,
    root: PathBuf,
    generation: u32,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// The etcd binary: `$ETCD_BIN`, else `etcd` on the `PATH`.
pub fn etcd_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("ETCD_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("ETCD_BIN={} does not exist; {INSTALL_HINT}", bin.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| INSTALL_HINT.to_string())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdServer {
    /// Starts etcd on two free loopback ports and waits until it answers.
    /// Fails with [`INSTALL_HINT`] in the message when etcd is not installed.
    pub async fn start() -> Result<Self, String> {
        let binary = etcd_binary()?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "easyraft-etcd-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let mut server = EtcdServer {
            binary,
            root,
            generation: 0,
            client_port: 0,
            peer_port: 0,
            child: None,
        };
        // Free ports can be taken between probing and etcd binding them: retry.
        let mut last = String::new();
        for _ in 0..3 {
            server.client_port = free_port().map_err(|e| e.to_string())?;
            server.peer_port = free_port().map_err(|e| e.to_string())?;
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The client endpoint, `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// A discovery config for this server under `prefix`, with short timeouts.
    pub fn config(&self, prefix: &str) -> EtcdConfig {
        EtcdConfig::new(self.endpoint(), prefix)
            .with_timeout(Duration::from_secs(2))
            .with_lease_ttl(Duration::from_secs(2))
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join(format!("data-{}", self.generation))
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("etcd.log")
    }

    async fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(&self.binary)
            .arg("--name=easyraft-test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=easyraft-test={peer}"))
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=250")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .arg("--log-level=warn")
            .env_remove("ETCD_NAME")
            .env_remove("ETCD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}; {INSTALL_HINT}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(20)).await
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let probe = EtcdServiceDiscovery::new(self.config("/easyraft-probe").with_timeout(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("etcd exited with {status}:\n{}", self.log_tail()));
                }
            }
            match probe.refresh().await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    self.kill();
                    return Err(format!(
                        "etcd did not answer within {within:?} ({e}):\n{}",
                        self.log_tail()
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills etcd at once (SIGKILL), like a crash. Its data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts etcd again on the same ports: with its data (`fresh == false`), or
    /// with an empty data directory, like an etcd rebuilt from scratch (every key
    /// and lease gone).
    pub async fn restart(&mut self, fresh: bool) -> Result<(), String> {
        self.kill();
        if fresh {
            self.generation += 1;
        }
        self.launch().await
    }

    /// The directory holding data and log.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
