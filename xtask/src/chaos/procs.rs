//! The chaos cluster's processes: spawn, SIGKILL, SIGSTOP and SIGCONT, what each one
//! last said about its role, and which of the node slots are members of the cluster.
//!
//! The run has a pool of node slots (an id, a Raft port that the other slots reach
//! through relays, an API port the clients connect to directly): the
//! founding voters, and spares the membership churn adds as new nodes. A slot is used
//! once: a node removed from the cluster is stopped and its data directory deleted,
//! and its id is never added again (a new node gets a new id, as Raft requires).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a node last reported: its generation (restart count), role and term.
type Roles = Arc<Mutex<BTreeMap<String, (u64, String, u64)>>>;

struct Proc {
    child: Child,
    /// Held open: the node exits when it closes.
    _stdin: Option<ChildStdin>,
    paused: bool,
}

#[derive(Default)]
struct State {
    procs: BTreeMap<String, Proc>,
    generation: u64,
    /// The slots that are members (voters or learners) of the cluster.
    members: BTreeSet<String>,
    /// Slots never used yet.
    spares: Vec<String>,
    /// Clock rates other than 1.
    rates: BTreeMap<String, f64>,
}

/// The node processes of one chaos run.
pub(crate) struct Procs {
    exe: PathBuf,
    data: PathBuf,
    token: String,
    /// Each slot's API port (kv and admin methods; the clients connect directly).
    pub(crate) ports: BTreeMap<String, u16>,
    /// Each slot's Raft port (its peers reach it through the relays).
    raft_ports: BTreeMap<String, u16>,
    /// Each slot's `--peers` (its peers at the relays).
    peers: BTreeMap<String, String>,
    /// The founding voters.
    founders: Vec<String>,
    state: Mutex<State>,
    roles: Roles,
}

impl Procs {
    /// Node slots with API ports `ports` and Raft ports `raft_ports` (id -> port),
    /// each seeing its peers at `peers` (id -> the `--peers` argument), run as `exe
    /// chaos-node`, with data and logs under `data`; `founders` are the founding
    /// voters, the other slots spares.
    pub(crate) fn new(
        exe: PathBuf,
        data: PathBuf,
        token: &str,
        ports: BTreeMap<String, u16>,
        raft_ports: BTreeMap<String, u16>,
        peers: BTreeMap<String, String>,
        founders: Vec<String>,
    ) -> Self {
        let mut spares: Vec<String> = ports.keys().filter(|id| !founders.contains(id)).cloned().collect();
        // n10 after n9.
        spares.sort_by_key(|id| (id.len(), id.clone()));
        spares.reverse();
        let state = State {
            members: founders.iter().cloned().collect(),
            spares,
            ..State::default()
        };
        Procs {
            exe,
            data,
            token: token.into(),
            ports,
            raft_ports,
            peers,
            founders,
            state: Mutex::new(state),
            roles: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The members of the cluster, as the driver knows them.
    pub(crate) fn members(&self) -> Vec<String> {
        self.state().members.iter().cloned().collect()
    }

    /// Whether `id` is a member.
    pub(crate) fn is_member(&self, id: &str) -> bool {
        self.state().members.contains(id)
    }

    /// Takes a never-used slot and makes it a member; `None` when none is left.
    pub(crate) fn take_spare(&self) -> Option<String> {
        let mut s = self.state();
        let id = s.spares.pop()?;
        s.members.insert(id.clone());
        Some(id)
    }

    /// `id` left the cluster: stops its process, deletes its data directory (its log
    /// file stays).
    pub(crate) fn retire(&self, id: &str) {
        self.state().members.remove(id);
        self.kill(id);
        let _ = std::fs::remove_dir_all(self.data.join(id));
    }

    /// Sets the clock rate node `id` runs with from its next start.
    pub(crate) fn set_rate(&self, id: &str, rate: f64) {
        let mut s = self.state();
        if (rate - 1.0).abs() < 1e-9 {
            s.rates.remove(id);
        } else {
            s.rates.insert(id.to_string(), rate);
        }
    }

    /// Starts member `id` (again, on the same ports and data directory); nothing if it
    /// is no longer a member.
    pub(crate) fn spawn(&self, id: &str) -> std::io::Result<()> {
        let mut s = self.state();
        if !s.members.contains(id) {
            return Ok(());
        }
        if let Some(mut old) = s.procs.remove(id) {
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        let port = self.raft_ports.get(id).copied().unwrap_or(0);
        let api_port = self.ports.get(id).copied().unwrap_or(0);
        let peers = self.peers.get(id).cloned().unwrap_or_default();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["chaos-node", "--id", id, "--port", &port.to_string(), "--peers", &peers])
            .args(["--api-port", &api_port.to_string()])
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--token", &self.token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if self.founders.iter().any(|f| f == id) {
            cmd.args(["--voters", &self.founders.join(",")]);
        }
        if let Some(rate) = s.rates.get(id) {
            cmd.args(["--clock-rate", &rate.to_string()]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn()?;
        s.generation += 1;
        let generation = s.generation;
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
        s.procs.insert(
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
    pub(crate) fn kill(&self, id: &str) {
        let p = self.state().procs.remove(id);
        if let Some(mut p) = p {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if let Ok(mut r) = self.roles.lock() {
            r.remove(id);
        }
    }

    /// Freezes node `id` (SIGSTOP), like a long GC pause or a stalled VM.
    pub(crate) fn pause(&self, id: &str) -> std::io::Result<()> {
        self.signal(id, "-STOP", true)
    }

    /// Thaws node `id` (SIGCONT).
    pub(crate) fn resume(&self, id: &str) -> std::io::Result<()> {
        self.signal(id, "-CONT", false)
    }

    fn signal(&self, id: &str, sig: &str, paused: bool) -> std::io::Result<()> {
        let mut s = self.state();
        let Some(p) = s.procs.get_mut(id) else {
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
        self.state().procs.get(id).is_some_and(|p| !p.paused)
    }

    /// Whether node `id` has a process (running, frozen or exited but not reaped).
    pub(crate) fn has_process(&self, id: &str) -> bool {
        self.state().procs.contains_key(id)
    }

    /// Nodes that have exited on their own (a crash, a storage error): their ids and
    /// exit statuses.
    pub(crate) fn exited(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, p) in &mut self.state().procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                out.push((id.clone(), status.to_string()));
            }
        }
        out
    }

    /// The node that reported being leader in the highest term, among the members up.
    pub(crate) fn leader(&self) -> Option<String> {
        let roles = self.roles.lock().ok()?.clone();
        roles
            .iter()
            .filter(|(id, (_, role, _))| role == "leader" && self.is_up(id) && self.is_member(id))
            .max_by_key(|(_, (_, _, term))| *term)
            .map(|(id, _)| id.clone())
    }

    /// Where the logs of node `id` go.
    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.data.join(format!("{id}.log"))
    }

    /// Thaws and kills every node.
    pub(crate) fn stop_all(&self) {
        let ids: Vec<String> = self.state().procs.keys().cloned().collect();
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
