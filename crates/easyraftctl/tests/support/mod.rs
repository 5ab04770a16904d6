//! Real processes on real sockets: three `easyraft-server`s on loopback ports (serving
//! one service, or all), and the `easyraftctl` binary run against them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long anything may take before a test fails (generous: the machine is shared).
pub(crate) const PATIENCE: Duration = Duration::from_secs(90);

/// The `easyraftctl` binary.
pub(crate) fn ctl_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_easyraftctl"))
}

static BUILD: Once = Once::new();

/// `easyraft-server`, next to `easyraftctl` in the target directory (built with
/// `cargo build -p easyraft-server` if it is not there).
pub(crate) fn server_exe() -> PathBuf {
    let dir = ctl_exe().parent().map(Path::to_path_buf).unwrap_or_default();
    let exe = dir.join("easyraft-server");
    if !exe.exists() {
        BUILD.call_once(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "easyraft-server", "--bin", "easyraft-server"])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo build -p easyraft-server failed");
        });
    }
    assert!(
        exe.exists(),
        "{} is missing: run `cargo build -p easyraft-server` first",
        exe.display()
    );
    exe
}

/// Starts one `easyraft-server` from a config file written to `dir` (`extra` lines
/// added before `[raft]`), its log in `dir/ID.log`.
pub(crate) fn server(dir: &Path, id: &str, peer: u16, client: u16, extra: &str) -> Child {
    let cfg = dir.join(format!("{id}.toml"));
    let text = format!(
        "id = \"{id}\"\ndata_dir = \"{}\"\nlisten_peer = \"127.0.0.1:{peer}\"\nlisten_client = \"127.0.0.1:{client}\"\n{extra}\n[raft]\nelection_timeout = \"600ms\"\nheartbeat_interval = \"60ms\"\n",
        dir.join(id).display(),
    );
    std::fs::write(&cfg, text).expect("write the config");
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).expect("log file");
    Command::new(server_exe())
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start easyraft-server")
}

/// A loopback port nothing listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// Three nodes of one service, killed on drop.
pub(crate) struct Nodes {
    /// `127.0.0.1:port` of node1..node3.
    pub(crate) endpoints: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Nodes {
    /// Starts node1..node3, three `easyraft-server`s serving only `service` (`kv`,
    /// `lock`, `config`), and waits until `ready` (a ctl command line) succeeds through
    /// any of them.
    pub(crate) fn start(service: &str, ready: &[&str]) -> Nodes {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (p, _))| format!("node{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let extra = format!("initial_cluster = \"{initial}\"\nservices = [\"{service}\"]\nadmin_insecure = true");
        let children = ports
            .iter()
            .enumerate()
            .map(|(i, (peer, client))| server(dir.path(), &format!("node{}", i + 1), *peer, *client, &extra))
            .collect();
        let nodes = Nodes {
            endpoints: ports.iter().map(|(_, c)| format!("127.0.0.1:{c}")).collect(),
            children,
            dir,
        };
        let all = nodes.all();
        let start = Instant::now();
        loop {
            let mut args = vec!["--endpoints", all.as_str()];
            args.extend_from_slice(ready);
            let out = ctl(&args);
            if out.code == 0 {
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the cluster never served {ready:?}: {}\n{}",
                out.stderr,
                nodes.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        nodes
    }

    /// All endpoints, comma-separated.
    pub(crate) fn all(&self) -> String {
        self.endpoints.join(",")
    }

    /// The nodes' logs, for a failure message.
    pub(crate) fn logs(&self) -> String {
        (1..=3)
            .map(|i| {
                let p = self.dir.path().join(format!("node{i}.log"));
                format!("--- node{i}:\n{}", std::fs::read_to_string(p).unwrap_or_default())
            })
            .collect()
    }

    /// The endpoint of a follower that knows the leader (from `cluster status`).
    pub(crate) fn follower(&self) -> String {
        self.find(|n| n["status"]["role"] == "follower" && n["status"]["leader"].is_string())
    }

    /// The endpoint of the leader (from `cluster status`).
    pub(crate) fn leader(&self) -> String {
        self.find(|n| n["status"]["role"] == "leader")
    }

    fn find(&self, pred: impl Fn(&Value) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = ctl(&["--endpoints", &self.all(), "-o", "json", "cluster", "status"]);
            if out.code == 0 {
                let v = out.json();
                let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
                if let Some(f) = nodes.iter().find(|n| pred(n)) {
                    return f["endpoint"].as_str().unwrap_or_default().to_string();
                }
            }
            assert!(start.elapsed() < PATIENCE, "no such node: {}", out.stdout);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends `signal` (`-STOP`, `-CONT`) to the node at `endpoint`.
    pub(crate) fn signal(&self, endpoint: &str, signal: &str) {
        let i = self
            .endpoints
            .iter()
            .position(|e| e == endpoint)
            .expect("one of the nodes");
        let pid = self.children[i].id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What `easyraftctl` did.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (-1: killed by a signal).
    pub(crate) code: i32,
    /// Its stdout.
    pub(crate) stdout: String,
    /// Its stderr.
    pub(crate) stderr: String,
}

impl Run {
    /// Stdout as JSON (fails the test otherwise).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?} / {:?}", self.stdout, self.stderr))
    }

    /// Fails the test unless the exit code is `code`.
    pub(crate) fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code; stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

fn from_output(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A `Command` for `easyraftctl` with no EASYRAFT_* from the test's environment.
pub(crate) fn ctl_command(args: &[&str]) -> Command {
    let mut c = Command::new(ctl_exe());
    c.args(args)
        .env_remove("EASYRAFT_ENDPOINTS")
        .env_remove("EASYRAFT_ADMIN_TOKEN")
        .stdin(Stdio::null());
    c
}

/// Runs `easyraftctl args` to the end.
pub(crate) fn ctl(args: &[&str]) -> Run {
    from_output(ctl_command(args).output().expect("run easyraftctl"))
}

/// Runs `easyraftctl --endpoints E -o json args`, expecting exit `code`, and returns
/// the JSON it printed.
pub(crate) fn ctl_json(endpoints: &str, code: i32, args: &[&str]) -> Value {
    let mut all = vec!["--endpoints", endpoints, "-o", "json"];
    all.extend_from_slice(args);
    ctl(&all).expect(code).json()
}

/// Waits for a spawned `easyraftctl` to finish (fails the test after [`PATIENCE`]).
pub(crate) fn finish(mut child: Child) -> Run {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return from_output(child.wait_with_output().expect("collect output"));
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let out = from_output(child.wait_with_output().expect("collect output"));
            panic!("easyraftctl did not finish: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
