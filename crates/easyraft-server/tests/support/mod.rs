//! Real `easyraft-server` processes on loopback ports, real config files, and a small
//! blocking HTTP/JSON-RPC client, as an operator's script would use them.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub(crate) const ADMIN_TOKEN: &str = "admin-secret";
pub(crate) const PEER_TOKEN: &str = "peer-secret";
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 request to 127.0.0.1:`port`; the status and the body.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    http_to(&format!("127.0.0.1:{port}"), method, path, body, token)
}

/// [`http`] to any `host:port`.
pub(crate) fn http_to(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    // A request that never left says so: nothing reached the server.
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{NOT_SENT}{e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(40)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {out:?}"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// How a transport failure's message starts when the request was never sent (the
/// connection was refused): retrying it cannot duplicate anything.
pub(crate) const NOT_SENT: &str = "connect: ";

/// A JSON-RPC call: the HTTP status and the whole response object.
pub(crate) fn rpc_raw(port: u16, method: &str, params: Value, token: Option<&str>) -> Result<(u16, Value), String> {
    rpc_raw_to(&format!("127.0.0.1:{port}"), method, params, token)
}

/// [`rpc_raw`] to any `host:port`.
pub(crate) fn rpc_raw_to(addr: &str, method: &str, params: Value, token: Option<&str>) -> Result<(u16, Value), String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let (status, text) = http_to(addr, "POST", "/", Some(&body), token)?;
    let v = serde_json::from_str(&text).map_err(|e| format!("{e}: {text:?}"))?;
    Ok((status, v))
}

/// A JSON-RPC call: `Ok(result)` or `Err(error object)` (transport failures as
/// `{"code": 0, "message": ...}`).
pub(crate) fn rpc(port: u16, method: &str, params: Value, token: Option<&str>) -> Result<Value, Value> {
    rpc_to(&format!("127.0.0.1:{port}"), method, params, token)
}

/// [`rpc`] to any `host:port`.
pub(crate) fn rpc_to(addr: &str, method: &str, params: Value, token: Option<&str>) -> Result<Value, Value> {
    match rpc_raw_to(addr, method, params, token) {
        Ok((_, v)) if v.get("result").is_some() => Ok(v["result"].clone()),
        Ok((_, v)) => Err(v["error"].clone()),
        Err(e) => Err(json!({"code": 0, "message": e})),
    }
}

/// Polls `f` until it returns `Some`, for up to [`DEADLINE`].
pub(crate) fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One server process.
pub(crate) struct Proc {
    pub(crate) id: String,
    pub(crate) peer: u16,
    pub(crate) client: u16,
    pub(crate) dir: PathBuf,
    pub(crate) config: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.id))).unwrap_or_default()
    }

    /// Whether the process runs (it was not killed or terminated).
    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends SIGTERM and waits (up to [`DEADLINE`]) for the process to exit.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} did not exit after SIGTERM\n{}",
                self.id,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to [`DEADLINE`]) for the process to exit on its own.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "{} did not exit\n{}", self.id, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `kill -<signal>` (`STOP`, `CONT`, ...) to the running process.
    pub(crate) fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {}", self.id);
    }

    /// Starts the process again from its config file, without other arguments (after
    /// [`Proc::kill`]), appending to its log.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "{} still runs", self.id);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join(format!("{}.log", self.id)))
            .unwrap();
        let child = bin()
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (no shutdown at all) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easyraft-server"))
}

/// Writes `dir/<id>.toml` for a node and the token files.
pub(crate) fn write_config(dir: &Path, id: &str, peer: u16, client: u16, extra: &str) -> PathBuf {
    // Written once: a running node may be reading them.
    for (name, token) in [("admin.token", ADMIN_TOKEN), ("peer.token", PEER_TOKEN)] {
        if !dir.join(name).exists() {
            std::fs::write(dir.join(name), token).unwrap();
        }
    }
    let text = format!(
        r#"id = "{id}"
data_dir = "{data}"
listen_peer = "127.0.0.1:{peer}"
listen_client = "127.0.0.1:{client}"
admin_token_file = "{admin}"
peer_token_file = "{peertok}"
catch_up_timeout = "20s"
{extra}
[raft]
election_timeout = "600ms"
heartbeat_interval = "60ms"
request_timeout = "5s"
"#,
        data = dir.join(id).display(),
        admin = dir.join("admin.token").display(),
        peertok = dir.join("peer.token").display(),
    );
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) fn spawn(dir: &Path, id: &str, peer: u16, client: u16, config: PathBuf, args: &[&str]) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
    let child = bin()
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc {
        id: id.into(),
        peer,
        client,
        dir: dir.to_path_buf(),
        config,
        child: Some(child),
    }
}

/// A server started with `args` and `envs` only (no config file), its log in
/// `dir/<id>.log`; `client` is its client port (on whatever address `args` bind).
pub(crate) fn spawn_with(dir: &Path, id: &str, client: u16, args: &[String], envs: &[(String, String)]) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
    let child = bin()
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc {
        id: id.into(),
        peer: 0,
        client,
        dir: dir.to_path_buf(),
        config: PathBuf::new(),
        child: Some(child),
    }
}

/// `n` servers bootstrapped from config files with one `initial_cluster`.
pub(crate) fn start_cluster(dir: &Path, n: usize) -> Vec<Proc> {
    start_cluster_with(dir, n, "")
}

/// [`start_cluster`] with `extra` appended to every node's config (e.g. a `[tls]`
/// section).
pub(crate) fn start_cluster_with(dir: &Path, n: usize, extra: &str) -> Vec<Proc> {
    let ports: Vec<(String, u16, u16)> = (1..=n)
        .map(|i| (format!("node{i}"), free_port(), free_port()))
        .collect();
    let initial = ports
        .iter()
        .map(|(id, p, _)| format!("{id}=127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    ports
        .iter()
        .map(|(id, p, c)| {
            let cfg = write_config(dir, id, *p, *c, &format!("initial_cluster = \"{initial}\"\n{extra}"));
            spawn(dir, id, *p, *c, cfg, &[])
        })
        .collect()
}

/// Servers whose Raft traffic goes through loopback relays, one per directed link
/// (`xtask::relay`), so a test can cut a partition while every process keeps running;
/// clients reach the client ports directly.
pub(crate) struct Relayed {
    pub(crate) relays: xtask::relay::Relays,
    /// Runs the relays.
    _rt: tokio::runtime::Runtime,
}

impl Relayed {
    /// Cuts `ids` off from the other servers (they still talk among themselves).
    pub(crate) fn cut(&self, ids: &[&str]) {
        self.relays.cut(ids.iter().map(|id| easyraft::NodeId::new(*id)));
    }

    /// Cuts the leader off from the other servers and waits until one of them leads,
    /// which shows the cut is real (nothing else unseats a healthy leader). The cut
    /// server's id.
    pub(crate) fn cut_leader(&self, nodes: &[Proc]) -> String {
        let (old, _) = leader(nodes);
        self.cut(&[&old]);
        wait_for(&format!("a leader other than the cut-off {old}"), || {
            nodes
                .iter()
                .filter(|n| n.id != old && n.child.is_some())
                .find(|n| is_leader(n.client))
                .map(|_| ())
        });
        old
    }

    /// Heals every cut.
    pub(crate) fn heal(&self) {
        self.relays.heal();
    }
}

/// [`start_cluster`] with the Raft traffic relayed: each server finds the others
/// through its own `static:` discovery at the relays of its outgoing links.
pub(crate) fn start_cluster_relayed(dir: &Path, n: usize) -> (Vec<Proc>, Relayed) {
    let ports: Vec<(String, u16, u16)> = (1..=n)
        .map(|i| (format!("node{i}"), free_port(), free_port()))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let peers = ports.iter().map(|(id, p, _)| (easyraft::NodeId::new(id), *p)).collect();
    let relays = rt.block_on(xtask::relay::Relays::start(&peers)).unwrap();
    let nodes = ports
        .iter()
        .map(|(id, p, c)| {
            let seen: Vec<String> = relays
                .addresses_for(&easyraft::NodeId::new(id))
                .iter()
                .map(|(peer, a)| format!("{peer}={a}"))
                .collect();
            // The discovery set bootstraps; this node's own entry is its real port.
            let cfg = write_config(dir, id, *p, *c, &format!("discovery = \"static:{}\"", seen.join(",")));
            spawn(dir, id, *p, *c, cfg, &[])
        })
        .collect();
    (nodes, Relayed { relays, _rt: rt })
}

/// The node every live node agrees leads (by `/status`), with its client port.
pub(crate) fn leader(nodes: &[Proc]) -> (String, u16) {
    let start = Instant::now();
    let mut found = None;
    while found.is_none() {
        if start.elapsed() > DEADLINE {
            for n in nodes {
                eprintln!("--- {} ---\n{}", n.id, n.log());
            }
            panic!("timed out waiting for a leader");
        }
        found = find_leader(nodes);
        std::thread::sleep(Duration::from_millis(100));
    }
    found.unwrap()
}

fn find_leader(nodes: &[Proc]) -> Option<(String, u16)> {
    nodes
        .iter()
        .find(|n| n.child.is_some() && is_leader(n.client))
        .map(|n| (n.id.clone(), n.client))
}

/// Whether the server on client port `port` says (`/status`) it leads.
fn is_leader(port: u16) -> bool {
    let Ok((200, body)) = http(port, "GET", "/status", None, None) else {
        return false;
    };
    serde_json::from_str::<Value>(&body).is_ok_and(|s| s["role"] == "leader")
}

/// Calls `method` following not-leader hints and retrying while unavailable; the
/// final answer.
pub(crate) fn call_leader(start: u16, method: &str, params: Value, token: Option<&str>) -> Result<Value, Value> {
    call_any(&[start], method, params, token)
}

/// Like [`call_leader`] over several endpoints, as a client given a member list would:
/// a hint is followed; no hint, a dead endpoint or "unavailable" moves on to the next.
pub(crate) fn call_any(endpoints: &[u16], method: &str, params: Value, token: Option<&str>) -> Result<Value, Value> {
    let addrs: Vec<String> = endpoints.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    call_any_to(&addrs, method, params, token)
}

/// [`call_any`] over `host:port` endpoints (hints are followed to the address given).
pub(crate) fn call_any_to(
    endpoints: &[String],
    method: &str,
    params: Value,
    token: Option<&str>,
) -> Result<Value, Value> {
    let mut next = 0;
    let mut at = endpoints[0].clone();
    let begin = Instant::now();
    loop {
        match rpc_to(&at, method, params.clone(), token) {
            Err(e) if e["code"] == -32020 && begin.elapsed() < DEADLINE => match e["data"]["address"].as_str() {
                Some(a) if a != at => at = a.to_string(),
                _ => {
                    next += 1;
                    at = endpoints[next % endpoints.len()].clone();
                }
            },
            Err(e) if (e["code"] == -32022 || e["code"] == -32023 || e["code"] == 0) && begin.elapsed() < DEADLINE => {
                next += 1;
                at = endpoints[next % endpoints.len()].clone();
            }
            other => return other,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn members(port: u16) -> Value {
    rpc(port, "admin_members", json!({}), Some(ADMIN_TOKEN)).unwrap_or_else(|e| panic!("admin_members: {e}"))
}

/// `id → role` of the members `port` reports.
pub(crate) fn roles(port: u16) -> std::collections::BTreeMap<String, String> {
    members(port)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Writes `w0`, `w1`, ... every 20 ms through whichever of `ports` answers (following
/// not-leader hints), remembering which were acknowledged.
pub(crate) struct Writer {
    acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    pub(crate) fn start(ports: Vec<u16>) -> Writer {
        use std::sync::atomic::Ordering;
        let acked: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let stop: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
        let thread = {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{i}");
                    let mut endpoints = ports.clone();
                    endpoints.rotate_left((i as usize) % ports.len());
                    let value = json!({"key": key, "value": format!("v{i}")});
                    if call_any(&endpoints, "kv_put", value, None).is_ok() {
                        acked.lock().unwrap().push(key);
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Writer { acked, stop, thread }
    }

    /// Waits for a few more acknowledged writes, stops, and checks that every
    /// acknowledged write is readable (linearizably) through each of `check`.
    pub(crate) fn finish(self, check: &[u16]) {
        let n_before = self.acked.lock().unwrap().len();
        wait_for("more acknowledged writes", || {
            (self.acked.lock().unwrap().len() > n_before + 5).then_some(())
        });
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
        let keys = self.acked.lock().unwrap().clone();
        assert!(keys.len() > 5, "only {} writes acknowledged", keys.len());
        for &port in check {
            let scan = call_leader(port, "kv_scan", json!({"prefix": "w", "limit": 10000}), None).unwrap();
            let have: std::collections::BTreeSet<String> = scan["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["key"].as_str().unwrap().to_string())
                .collect();
            for k in &keys {
                assert!(have.contains(k), "acknowledged {k} missing on port {port}");
            }
        }
    }
}

/// An easyraft-client over `endpoints` (`host:port`) with `protocol`: 2 s to connect,
/// 5 s per attempt, 60 s per call, the admin token if given.
pub(crate) fn easyraft_client_to(
    endpoints: &[String],
    protocol: easyraft_client::client::Protocol,
    admin_token: Option<&str>,
) -> easyraft_client::client::Client {
    easyraft_client::client::Client::new(easyraft_client::client::Settings {
        endpoints: easyraft_client::endpoint::Endpoint::parse_list(endpoints).unwrap(),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
        admin_token: admin_token.map(str::to_string),
        cacert: None,
        protocol,
    })
    .unwrap()
}

/// [`easyraft_client_to`] over loopback client ports.
pub(crate) fn easyraft_client(
    ports: &[u16],
    protocol: easyraft_client::client::Protocol,
    admin_token: Option<&str>,
) -> easyraft_client::client::Client {
    let endpoints: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    easyraft_client_to(&endpoints, protocol, admin_token)
}
