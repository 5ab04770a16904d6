//! The chaos cluster's processes: spawn, SIGKILL, SIGSTOP and SIGCONT, and what each
//! one last said about its role.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What a node last reported: its generation (restart count), role and term.
type Roles = Arc<Mutex<BTreeMap<String, (u64, String, u64)>>>;

struct Proc {
    child: Child,
    /// Held open: the node exits when it closes.
    _stdin: Option<ChildStdin>,
    paused: bool,
}

/// The node processes of one chaos run.
pub(crate) struct Procs {
    exe: PathBuf,
    data: PathBuf,
    token: String,
    /// Each node's own port.
    pub(crate) ports: BTreeMap<String, u16>,
    /// Each node's `--peers` (its peers at the relays).
    peers: BTreeMap<String, String>,
    procs: BTreeMap<String, Proc>,
    roles: Roles,
    generation: u64,
}

impl Procs {
    /// Nodes `ports` (id -> own port), each seeing its peers at `peers` (id -> the
    /// `--peers` argument), run as `exe chaos-node`, with data and logs under `data`.
    pub(crate) fn new(
        exe: PathBuf,
        data: PathBuf,
        token: &str,
        ports: BTreeMap<String, u16>,
        peers: BTreeMap<String, String>,
    ) -> Self {
        Procs {
            exe,
            data,
            token: token.into(),
            ports,
            peers,
            procs: BTreeMap::new(),
            roles: Arc::default(),
            generation: 0,
        }
    }

    /// Starts node `id` (again, on the same port and data directory).
    pub(crate) fn spawn(&mut self, id: &str) -> std::io::Result<()> {
        let port = self.ports.get(id).copied().unwrap_or(0);
        let peers = self.peers.get(id).cloned().unwrap_or_default();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join(format!("{id}.log")))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["chaos-node", "--id", id, "--port", &port.to_string(), "--peers", &peers])
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--token", &self.token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn()?;
        self.generation += 1;
        let generation = self.generation;
        if let Some(out) = child.stdout.take() {
            let (roles, id) = (self.roles.clone(), id.to_string());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let field = |name: &str| {
                        line.split(' ')
                            .find_map(|f| f.strip_prefix(name).map(str::to_string))
                            .unwrap_or_default()
                    };
                    let (role, term) = (field("role="), field("term=").parse().unwrap_or(0));
                    if let Ok(mut r) = roles.lock() {
                        r.insert(id.clone(), (generation, role, term));
                    }
                }
                if let Ok(mut r) = roles.lock() {
                    if r.get(&id).is_some_and(|(g, ..)| *g == generation) {
                        r.remove(&id);
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        self.procs.insert(
            id.to_string(),
            Proc {
                child,
                _stdin: stdin,
                paused: false,
            },
        );
        Ok(())
    }

    /// SIGKILLs node `id` and reaps it.
    pub(crate) fn kill(&mut self, id: &str) {
        if let Some(mut p) = self.procs.remove(id) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if let Ok(mut r) = self.roles.lock() {
            r.remove(id);
        }
    }

    /// Freezes node `id` (SIGSTOP), like a long GC pause or a stalled VM.
    pub(crate) fn pause(&mut self, id: &str) -> std::io::Result<()> {
        self.signal(id, "-STOP", true)
    }

    /// Thaws node `id` (SIGCONT).
    pub(crate) fn resume(&mut self, id: &str) -> std::io::Result<()> {
        self.signal(id, "-CONT", false)
    }

    fn signal(&mut self, id: &str, sig: &str, paused: bool) -> std::io::Result<()> {
        let Some(p) = self.procs.get_mut(id) else {
            return Ok(());
        };
        let status = Command::new("kill").args([sig, &p.child.id().to_string()]).status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!("kill {sig} {id}: {status}")));
        }
        p.paused = paused;
        Ok(())
    }

    /// Whether node `id` runs and is not frozen.
    pub(crate) fn is_up(&self, id: &str) -> bool {
        self.procs.get(id).is_some_and(|p| !p.paused)
    }

    /// Nodes that have exited on their own (a crash): their ids and exit statuses.
    pub(crate) fn exited(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, p) in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                out.push((id.clone(), status.to_string()));
            }
        }
        out
    }

    /// The node that reported being leader in the highest term, among those up.
    pub(crate) fn leader(&self) -> Option<String> {
        let roles = self.roles.lock().ok()?;
        roles
            .iter()
            .filter(|(id, (_, role, _))| role == "leader" && self.is_up(id))
            .max_by_key(|(_, (_, _, term))| *term)
            .map(|(id, _)| id.clone())
    }

    /// Where the logs of node `id` go.
    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.data.join(format!("{id}.log"))
    }

    /// Thaws and kills every node.
    pub(crate) fn stop_all(&mut self) {
        let ids: Vec<String> = self.procs.keys().cloned().collect();
        for id in ids {
            let _ = self.resume(&id);
            self.kill(&id);
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop_all();
    }
}
